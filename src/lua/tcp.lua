-- tcp.lua - the script side of weft.tcp (see tcp.c). Compiled into the module.
-- SPDX-License-Identifier: MIT
local weft, I = ...
local _ = weft, I
