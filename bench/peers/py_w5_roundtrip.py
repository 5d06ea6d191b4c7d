# W5 worker round trip, Python peer: x -> x + 1 runs in a thread pool
# (loop.run_in_executor, the idiomatic way to call blocking host code).
# seq: N calls in sequence (W5); c: N calls from 64 tasks (W5c). The pool
# has 4 threads, libuv's default.
# usage: /usr/bin/python3 bench/peers/py_w5_roundtrip.py [--uvloop] seq|c [N]
import asyncio
from concurrent.futures import ThreadPoolExecutor
import py_common as C

MODE, N = C.arg(0, "seq"), int(C.arg(1, 100000))


def inc(x):
    return x + 1


async def main():
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(4)
    for _ in range(1000):  # warm-up: start the workers
        await loop.run_in_executor(pool, inc, 1)
    t0, c0 = C.now(), C.cpu()
    if MODE == "seq":
        x = 0
        for _ in range(N):
            x = await loop.run_in_executor(pool, inc, x)
        ok = x == N
    else:
        K = 64

        async def share(k):
            acc = 0
            for _ in range(k, N, K):
                acc += await loop.run_in_executor(pool, inc, 0)
            return acc
        ok = sum(await asyncio.gather(*(share(k) for k in range(K)))) == N
    wall = C.now() - t0
    C.report("W5" if MODE == "seq" else "W5c", N, wall, C.cpu() - c0, ok,
             us_per_op=round(wall * 1000 / N, 3))
    pool.shutdown()

C.run(main)
