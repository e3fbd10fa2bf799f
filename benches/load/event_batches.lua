-- wrk script: POST /v1/events with batches of 1,000 distinct events (carts, views, checkouts and
-- order lines for 50,000 contacts), made before the clock starts. Read from the environment:
-- AUGUR_KEY (the API key), BATCHES (distinct bodies, default 600: a run that cycles through
-- them all posts duplicates, which the store skips, and the summary says so) and DELAY_MS (a
-- pause before each request on a connection, default 0: with one connection, 50 ms paces it
-- at about 20 batches, 20,000 events, a second).
local batches = tonumber(os.getenv("BATCHES") or "600")
local pause = tonumber(os.getenv("DELAY_MS") or "0")
local bodies = {}
local now = os.time() - 3600
local kinds = {"view", "add_to_cart", "view", "checkout"}
for b = 1, batches do
    local events = {}
    for i = 1, 1000 do
        local n = (b - 1) * 1000 + i
        local contact = "L" .. (n % 50000)
        if i % 10 == 0 then
            events[i] = string.format('{"type":"order","contact_id":"%s","occurred_at":%d,"order_id":"LO%d","product_id":"P%05d","quantity":1,"unit_price":9.5}', contact, now + n % 3600, n, n % 500)
        else
            events[i] = string.format('{"type":"web","event":"%s","event_id":"e%d","contact_id":"%s","occurred_at":%d,"product_id":"P%05d"}', kinds[n % 4 + 1], n, contact, now + n % 3600, n % 500)
        end
    end
    bodies[b] = '{"events":[' .. table.concat(events, ",") .. ']}'
end
local i = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("AUGUR_KEY") or "")
wrk.headers["Content-Type"] = "application/json"
request = function()
    i = i % #bodies + 1
    return wrk.format(nil, "/v1/events", nil, bodies[i])
end
delay = function()
    return pause
end
done = function(summary, latency, requests)
    io.write(string.format("batches %d (%d distinct), events/s %.0f, latency p50 %.1f ms, p99 %.1f ms, non-2xx %d\n",
        summary.requests, math.min(summary.requests, #bodies),
        summary.requests * 1000 / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.status))
end
