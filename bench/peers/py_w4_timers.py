# W4 timers, Python peer: loop.call_later / TimerHandle.cancel. Mode a:
# start all, then cancel all (the clock stops after one loop turn). Mode b:
# let all fire.
# usage: /usr/bin/python3 bench/peers/py_w4_timers.py [--uvloop] a|b [N]
import asyncio
import py_common as C

MODE, N = C.arg(0, "a"), int(C.arg(1, 1000000))
assert MODE in ("a", "b"), "mode must be a or b"


async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    state = {"fired": 0, "sum": 0}

    def fire(d):
        state["fired"] += 1
        state["sum"] += d
        if state["fired"] == N:
            done.set_result(None)
    delays = C.minstd(42)
    want = 0
    t0, c0 = C.now(), C.cpu()
    timers = []
    for _ in range(N):
        d = next(delays)
        want += d
        timers.append(loop.call_later(d / 1000, fire, d))
    if MODE == "a":
        for t in timers:
            t.cancel()
        await asyncio.sleep(0)
        ok = state["fired"] == 0
    else:
        await done
        ok = state["fired"] == N and state["sum"] == want
    C.report("W4" + MODE, N, C.now() - t0, C.cpu() - c0, ok)

C.run(main)
