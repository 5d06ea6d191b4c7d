# W7 HTTP, Python peer: a raw HTTP/1.1 client on asyncio streams (the
# standard library has no asynchronous HTTP client); CONNS keep-alive
# connections, each a task doing its share of the N GETs in sequence.
# usage: /usr/bin/python3 bench/peers/py_w7_http.py [--uvloop] PORT [N] [CONNS]
import asyncio
import py_common as C

PORT, N, CONNS = int(C.arg(0, 0)), int(C.arg(1, 10000)), int(C.arg(2, 50))
REQUEST = b"GET /body HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def client(count):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    good = nbytes = 0
    for _ in range(count):
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        good += status == 200
        nbytes += len(body)
    writer.close()
    await writer.wait_closed()
    return good, nbytes


async def main():
    t0, c0 = C.now(), C.cpu()
    shares = [N // CONNS + (k < N % CONNS) for k in range(CONNS)]
    res = await asyncio.gather(*(client(c) for c in shares))
    cpu = C.cpu() - c0
    good, nbytes = sum(r[0] for r in res), sum(r[1] for r in res)
    C.report("W7", N, C.now() - t0, cpu, good == N and nbytes == N * 128,
             cpu_us_per_req=round(cpu * 1000 / N, 3))

C.run(main)
