-- http.lua - the script side of weft.http (see http.c). Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I = ...
local _ = weft, I
