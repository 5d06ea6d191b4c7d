# W3 ping-pong, Python peer: two tasks, two asyncio.Queue(maxsize=1).
# usage: /usr/bin/python3 bench/peers/py_w3_pingpong.py [--uvloop] [N]
import asyncio
import py_common as C

N = int(C.arg(0, 1000000))


async def main():
    ping, pong = asyncio.Queue(1), asyncio.Queue(1)

    async def ponger():
        for _ in range(N):
            await pong.put(await ping.get() + 1)

    async def pinger():
        s = 0
        for i in range(1, N + 1):
            await ping.put(i)
            s += await pong.get()
        return s
    t0, c0 = C.now(), C.cpu()
    b = asyncio.create_task(ponger())
    s = await asyncio.create_task(pinger())
    await b
    C.report("W3", N, C.now() - t0, C.cpu() - c0, s == N * (N + 1) // 2 + N)

C.run(main)
