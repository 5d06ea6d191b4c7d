# W2 sleep fan-out, Python peer: asyncio tasks in asyncio.sleep.
# usage: /usr/bin/python3 bench/peers/py_w2_sleep_fanout.py [--uvloop] [N]
import asyncio
import gc
import py_common as C

N = int(C.arg(0, 10000))


async def body(i):
    await asyncio.sleep(0.1)
    return i


async def main():
    gc.collect()
    base = C.rss_kb("VmRSS")
    t0, c0 = C.now(), C.cpu()
    tasks = [asyncio.create_task(body(i)) for i in range(1, N + 1)]
    await asyncio.sleep(0)  # let every task start and park
    sleeping = C.rss_kb("VmRSS")
    s = 0
    for t in tasks:
        s += await t
    C.report("W2", N, C.now() - t0, C.cpu() - c0, s == N * (N + 1) // 2,
             bytes_per_task=round((sleeping - base) * 1024 / N, 1))

C.run(main)
