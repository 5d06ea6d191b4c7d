-- A main task that ends cancelled prints its cancellation, not
-- "(error object is not a string)".
-- exit: 1
-- expect: weft: cancelled: stopped by the script
-- reject: error object is not a string
weft.current():cancel("stopped by the script")
weft.sleep(1)
