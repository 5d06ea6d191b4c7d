-- helper_spec.lua - the test helper itself: H.run must fail a test that
-- leaves a task running or a failure unobserved, and keep error values.
local H = require "helper"
local weft = H.weft

describe("H.run", function()
  it("returns the body's values", function()
    assert.same({ 1, "b" }, { H.run(function() return 1, "b" end) })
  end)

  it("raises the body's error, same value", function()
    local e = {}
    assert.equal(e, H.raises(H.run, function() error(e) end))
  end)

  it("fails on a task left running, and cancels it", function()
    local cleaned = false
    local e = H.raises(H.run, function()
      weft.spawn({ name = "forgotten" }, H.closing,
        function() cleaned = true end, weft.sleep, 1e6)
    end)
    assert.matches("tasks left running when the test body returned: "
      .. "#%d+ 'forgotten' %(waiting%)", e)
    assert.is_true(cleaned)
    H.check_clean()
  end)

  it("fails on a repeating timer left running", function()
    local e = H.raises(H.run, function() weft.every(1, function() end) end)
    assert.matches("'every'", e)
    H.check_clean()
  end)

  it("lets cancelled tasks unwind without failing", function()
    H.run(function()
      local t = weft.spawn(function() weft.sleep(1e6) end)
      weft.yield()
      t:cancel()
    end)
  end)

  it("fails on a task failure nobody awaited", function()
    -- the report itself goes to stderr
    local e = H.raises(H.run, function()
      weft.spawn(function() error("ignored failure") end)
      weft.sleep(0)
    end)
    assert.matches("1 task failure%(s%) nobody awaited", e)
  end)

  it("fails when a task is live before the test", function()
    local t = weft.spawn(function() end)
    H.raises_match("before the test: 1 task(s) still live", H.run,
      function() end)
    weft.run(function() t:await() end)
    H.check_clean()
  end)
end)
