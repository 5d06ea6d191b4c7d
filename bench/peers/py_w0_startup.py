# W0 start-up, Python peer: asyncio.run of an empty coroutine. The harness
# times the whole process.
# usage: /usr/bin/python3 bench/peers/py_w0_startup.py [--uvloop]
import asyncio
import py_common as C


async def main():
    ran = False

    async def body():
        nonlocal ran
        ran = True
    await asyncio.create_task(body())
    C.report("W0", 1, 0, C.cpu(), ran)

C.run(main)
