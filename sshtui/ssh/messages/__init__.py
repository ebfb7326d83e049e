"""One frozen dataclass per SSH message, each with ``encode()`` and ``decode()``.

``encode()`` returns the whole payload including the message number; ``decode(payload)``
takes the same and ends with ``check_end()`` so no trailing bytes pass unnoticed.
"""
