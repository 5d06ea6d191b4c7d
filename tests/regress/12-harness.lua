-- The regression harness itself: the exit status and the output are
-- checked (this script fails on purpose, and must).
-- exit: 1
-- expect: unhandled error in task #[0-9]+: harness-marker
-- reject: AddressSanitizer
weft.spawn(function() error("harness-marker", 0) end)
