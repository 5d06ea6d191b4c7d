# W1 spawn-await, Python peer: asyncio tasks.
# usage: /usr/bin/python3 bench/peers/py_w1_spawn_await.py [--uvloop] [N]
import asyncio
import py_common as C

N = int(C.arg(0, 100000))


async def body(i):
    return i


async def main():
    t0, c0 = C.now(), C.cpu()
    tasks = [asyncio.create_task(body(i)) for i in range(1, N + 1)]
    s = 0
    for t in tasks:
        s += await t
    C.report("W1", N, C.now() - t0, C.cpu() - c0, s == N * (N + 1) // 2)

C.run(main)
