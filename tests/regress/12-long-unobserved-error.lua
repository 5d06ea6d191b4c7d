-- An unobserved failure whose message is long is reported whole, with its
-- traceback (the report once grew a buffer under a pushed value and
-- crashed).
-- exit: 1
-- expect: unhandled error in task #[0-9]+: x+
-- expect: xxxxxxxxxx.stack traceback:
-- reject: AddressSanitizer
weft.spawn(function() error(("x"):rep(3000), 0) end)
