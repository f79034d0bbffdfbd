"""A small fixed knowledge base (a bicycle shop) and questions whose answer is in exactly one
of its documents: the retrieval-quality tests check that document's chunk ranks first."""

from __future__ import annotations

from channels_app.bot import knowledge

DOCUMENTS = {
    "Opening hours": (
        "The shop is open Monday to Friday from 9:00 to 18:00 and on Saturday from 10:00 to "
        "16:00. On Sundays and public holidays we are closed. The workshop closes half an hour "
        "before the shop."
    ),
    "Finding us": (
        "Our shop is at 12 Harbour Street, next to the railway station. Free car parking is "
        "available behind the building, and there are covered racks to lock your bike."
    ),
    "Servicing and repairs": (
        "A basic tune-up costs 45 euros and a full service costs 95 euros, parts extra. "
        "Puncture repairs are 12 euros. Most repairs are done within two working days; book "
        "the workshop by phone or in the shop."
    ),
    "Delivery": (
        "We ship bikes and accessories across the country. Shipping takes three to five "
        "working days and is free for orders above 100 euros; smaller orders pay 6 euros. "
        "Bikes arrive 95% assembled in a box."
    ),
    "Returns and refunds": (
        "Unused accessories such as helmets, lights and clothing can be returned within 30 "
        "days with the receipt for a full refund of the money. Bikes that were ridden "
        "cannot be returned, but we will gladly exchange them."
    ),
    "Warranty": (
        "Every frame has a lifetime warranty against manufacturing defects. Components are "
        "covered for two years. The warranty does not cover wear, crashes or racing."
    ),
    "Payment": (
        "We accept cash, debit and credit cards (Visa, Mastercard), PayPal and bank transfer. "
        "Bikes above 500 euros can be paid in twelve monthly instalments with no interest."
    ),
    "Bike rental": (
        "City bikes can be rented for 15 euros per day or 60 euros per week; e-bikes for 35 "
        "euros per day. A weekend rental runs from Friday evening to Monday morning. Bring an "
        "identity document."
    ),
    "Test rides": (
        "You are welcome to try any bike before you buy it. Test rides last up to 30 minutes "
        "on the quiet street behind the shop; we keep your identity card while you ride."
    ),
    "Electric bikes": (
        "Our e-bikes have a 500 Wh battery with a range of 80 to 120 kilometres per charge, "
        "depending on assistance level and terrain. A full charge takes about four hours."
    ),
    "Children's bikes": (
        "Kids' bikes are sized by wheel: 16 inch wheels fit children aged four to six, 20 inch "
        "wheels fit seven to nine years, and 24 inch wheels fit ages nine to twelve."
    ),
    "Gift cards": (
        "Gift cards and vouchers are sold in the shop and online, from 20 to 500 euros. They "
        "are valid for two years and can pay for bikes, accessories, rentals and servicing."
    ),
}

QUESTIONS = [
    ("Are you open on Sunday?", "Opening hours"),
    ("Where can I park my car near the shop?", "Finding us"),
    ("How much does a full service cost?", "Servicing and repairs"),
    ("How long does shipping take?", "Delivery"),
    ("Can I return a helmet I don't like and get my money back?", "Returns and refunds"),
    ("What does the warranty on the frame cover?", "Warranty"),
    ("Do you accept PayPal or credit cards?", "Payment"),
    ("I'd like to rent a bike for the weekend, what's the daily price?", "Bike rental"),
    ("Can I try a bike before buying it?", "Test rides"),
    ("How many kilometres can the e-bike battery go on one charge?", "Electric bikes"),
    ("Which wheel size fits a seven year old child?", "Children's bikes"),
    ("Do you sell gift vouchers?", "Gift cards"),
]


def load(tenant) -> dict[str, int]:
    """Add the documents to `tenant`'s knowledge base (its tenant must be active); returns
    {title: document id}."""
    return {
        title: knowledge.add_document(title=title, content=text).pk
        for title, text in DOCUMENTS.items()
    }
