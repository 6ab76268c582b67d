-- wrk script for the measured client of scenario g: tokens.lua, with a pause of args[5] ms
-- before each request on a connection (ordinary traffic, not a saturating load).
dofile("bench/tokens.lua")

function delay()
   return think
end
