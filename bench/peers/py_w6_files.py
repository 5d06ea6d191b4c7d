# W6 files, Python peer: asyncio has no asynchronous file I/O; the
# idiomatic way is a thread pool (loop.run_in_executor, default executor):
# one pool job per read (open, read, close). 64 tasks read the file set
# `passes` times.
# usage: /usr/bin/python3 bench/peers/py_w6_files.py [--uvloop] DIR NFILES PASSES
import asyncio
import py_common as C

DIR, NFILES, PASSES = C.arg(0, "."), int(C.arg(1, 1000)), int(C.arg(2, 10))
K, TOTAL = 64, NFILES * PASSES


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


async def main():
    loop = asyncio.get_running_loop()
    st = {"next": 0, "good": 0, "bytes": 0}

    async def reader():
        while st["next"] < TOTAL:
            i = st["next"] % NFILES
            st["next"] += 1
            data = await loop.run_in_executor(None, read_file, f"{DIR}/{i}")
            st["good"] += C.file_ok(i, data)
            st["bytes"] += len(data)
    t0, c0 = C.now(), C.cpu()
    await asyncio.gather(*(reader() for _ in range(K)))
    C.report("W6", TOTAL, C.now() - t0, C.cpu() - c0,
             st["good"] == TOTAL and st["bytes"] == TOTAL * 4096)

C.run(main)
