"""Phone normalisation: the one customer identity shared by dialer leads and CRM customers.

Both sides must store exactly the same string for the same person, so the dialer should call
:func:`normalise_phone` too. The result is E.164: ``+`` and 8-15 digits.
"""

from __future__ import annotations

import re

from dialer_core.crm.errors import ValidationError

DEFAULT_COUNTRY_CODE = "7"
_NOISE = re.compile(r"[\s()\-.]")


def normalise_phone(raw: str, country_code: str = DEFAULT_COUNTRY_CODE) -> str:
    """``'8 (912) 345-67-89'`` -> ``'+79123456789'``; raises ValidationError if not a phone.

    National forms of the default country (a trunk prefix ``8`` + 10 digits, or 10 bare digits)
    get its country code; ``00`` is the international prefix.
    """
    text = _NOISE.sub("", raw or "")
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
    elif len(text) == 11 and text.startswith("8") and country_code == "7":
        digits = "7" + text[1:]
    elif len(text) == 10:
        digits = country_code + text
    else:
        digits = text
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValidationError(f"not a phone number: {raw!r}", field="phone")
    return "+" + digits
