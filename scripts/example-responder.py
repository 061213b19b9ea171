#!/usr/bin/env python3
"""An example vendor program for vrm (see proto/responder.md).

Two modes, one shop: a bicycle seller.

Without arguments it is the **responder**: vrm runs it once per intent in the vendor's
categories, with the intent as JSON on stdin, and reads the offer as JSON from stdout. It
offers a city bike to any intent that mentions "bike" or "bicycle", at 10% under the
person's ceiling but never under 150.00, and declines everything else.

With `--relationships` it is the vendor's **CRM**: vrm starts it once and keeps it running,
writes every relationship event to its stdin as JSON lines, and reads commands from its
stdout. It confirms every accepted offer, ships every agreed order (with a tracking number)
and marks it fulfilled once shipped, and answers each message from a customer.

Configure it in the vendor's config.toml:
    [vendor]
    responder = ["python3", "scripts/example-responder.py"]
    crm = ["python3", "scripts/example-responder.py", "--relationships"]
    confirm_by_hand = true    # let the program confirm, instead of the catalog at once
"""
import json
import sys

FLOOR = 15000  # minor units (cents)


def respond():
    request = json.load(sys.stdin)
    intent = request["intent"]
    text = intent["text"].lower()
    if "bike" not in text and "bicycle" not in text:
        print(json.dumps({"offer": None}))
        return

    ceiling = intent.get("constraints", {}).get("max_price")
    currency = ceiling["currency"] if ceiling else "EUR"
    quantity = intent.get("constraints", {}).get("quantity", 1)
    unit = 24000
    if ceiling:
        unit = max(FLOOR, ceiling["amount"] * 9 // 10 // quantity)
        if unit * quantity > ceiling["amount"]:
            print(json.dumps({"offer": None}))
            return

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


def command(action, rel, text=""):
    print(json.dumps({"do": action, "relationship": rel, "text": text}), flush=True)


def next_steps(rel, state):
    """What to do about a relationship in `state` (the same state may come twice)."""
    if state.get("ended_by"):
        return
    if state["stage"] == "accepted":
        command("confirm", rel)
    elif state["stage"] == "agreed" and not state["shipped"] and not state["fulfilled"]:
        command("ship", rel, "tracking BIKE-" + rel[:8])
    elif state["stage"] == "agreed" and state["shipped"] and not state["fulfilled"]:
        command("fulfil", rel)


REPLY = "Thanks for your message: we ride out at 9."


def crm():
    replied = set()  # (relationship, place) of customer messages answered
    for line in sys.stdin:
        event = json.loads(line)
        if event.get("event") == "relationship":
            # At start (and after falling behind): every relationship as it stands. A
            # customer's message with no answer after it came while we were away.
            rel = event["relationship"]
            next_steps(rel["id"], rel["state"])
            messages = [e for e in rel["log"] if e["kind"] == "message"]
            last = messages[-1] if messages else None
            if last and last["from"] == "person" and not rel["state"].get("ended_by") \
                    and (rel["id"], last["seq"]) not in replied:
                replied.add((rel["id"], last["seq"]))
                command("message", rel["id"], REPLY)
        elif event.get("event") == "entry":
            rel, entry = event["relationship"], event["entry"]
            if entry["kind"] == "message":
                if entry["from"] == "person" and (rel, entry["seq"]) not in replied:
                    replied.add((rel, entry["seq"]))
                    command("message", rel, REPLY)
            else:
                next_steps(rel, event["state"])
        # Answers to our commands ({"done": ...} or {"refused": ...}) need nothing more here.


if __name__ == "__main__":
    crm() if "--relationships" in sys.argv[1:] else respond()
