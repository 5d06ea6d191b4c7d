-- Many tasks failing while memory is short end in seconds, not minutes:
-- failed tasks nobody holds are reported and freed between tasks, rather
-- than kept until the run ends while every allocation that fails costs a
-- full collection (this took about 240 s; the test's time limit is 120 s).
-- weft-args: --memory-limit 8M
-- exit: 1
-- expect: unhandled error in task #[0-9]+: [^ ]*: fail 1
-- expect: the memory limit was reached
for i = 1, 20000 do weft.spawn(function() error("fail " .. i) end) end
weft.sleep(10)
