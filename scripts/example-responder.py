#!/usr/bin/env python3
"""An example vendor responder for vrm (see proto/responder.md).

vrm runs it once per intent in the vendor's categories, with the intent as JSON on stdin,
and reads the offer as JSON from stdout. This one sells bicycles: it offers a city bike to
any intent that mentions "bike" or "bicycle", at 10% under the person's ceiling but never
under 150.00, and declines everything else.

Configure it in the vendor's config.toml:
    [vendor]
    responder = ["python3", "scripts/example-responder.py"]
"""
import json
import sys

FLOOR = 15000  # minor units (cents)

request = json.load(sys.stdin)
intent = request["intent"]
text = intent["text"].lower()
if "bike" not in text and "bicycle" not in text:
    print(json.dumps({"offer": None}))
    sys.exit(0)

ceiling = intent.get("constraints", {}).get("max_price")
currency = ceiling["currency"] if ceiling else "EUR"
quantity = intent.get("constraints", {}).get("quantity", 1)
unit = 24000
if ceiling:
    unit = max(FLOOR, ceiling["amount"] * 9 // 10 // quantity)
    if unit * quantity > ceiling["amount"]:
        print(json.dumps({"offer": None}))
        sys.exit(0)

print(json.dumps({
    "offer": {
        "items": [{
            "title": "City bike, 7 gears",
            "price": f"{unit // 100}.{unit % 100:02d}",
            "currency": currency,
            "quantity": quantity,
            "sku": "CITY-7",
        }],
        "text": "Assembled and checked; pick up in the shop or delivered in 2 days.",
    }
}))
