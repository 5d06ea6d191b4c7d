-- A table error without __tostring shows its fields; an error whose
-- __tostring raises is still reported, with a note (it exited silently).
-- exit: 1
-- expect: unhandled error in task #[0-9]+ 'fields': {code = 42}
-- expect: unhandled error in task #[0-9]+ 'bad': \(a table error value whose __tostring failed\)
-- expect: weft: {reason = "main"}
-- reject: table: 0x
weft.spawn({ name = "fields" }, function() error({ code = 42 }) end)
weft.spawn({ name = "bad" }, function()
  error(setmetatable({}, { __tostring = function() error("no") end }))
end)
weft.sleep(1)
error({ reason = "main" })
