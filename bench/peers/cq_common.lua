-- cq_common.lua - runs a cqueues peer program: main(...) in a coroutine of
-- a new controller, looped until every coroutine has ended; an error in
-- any of them fails the program.
-- SPDX-License-Identifier: MIT
local cqueues = require "cqueues"

return function(main, ...)
  local cq = cqueues.new()
  cq:wrap(main, ...)
  local ok, err = cq:loop()
  if not ok then
    io.stderr:write("cqueues: ", tostring(err), "\n")
    os.exit(1)
  end
end
