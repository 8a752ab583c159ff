"""Greedy-exactness prompts: code, prose, unicode, numbers, long words (original texts)."""

PROMPTS = [
    # code
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "import os\nfor name in sorted(os.listdir('.')):\n    print(",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):",
    "SELECT name, COUNT(*) FROM orders WHERE total > 100 GROUP BY",
    "for (int i = 0; i < n; ++i) {\n    sum +=",
    "    # indented comment with trailing spaces   \n    x = {'a': 1, 'b': [2, 3]}\n",
    'raise ValueError(f"bad value: {value!r}")',
    "lambda xs: [x ** 2 for x in xs if x % 2 == 0]",
    # prose
    "The river bent twice before it reached the old mill, and the miller",
    "Once upon a time, in a village at the edge of the forest,",
    "Summarize the following article:\nThe council met on Tuesday to discuss the new park.\nSummary:\n",
    "Question: Why is the sky blue?\nAnswer:",
    'She said, "Don\'t forget the keys!" and closed the door.',
    "  leading spaces and  double  spaces  between words",
    "Line one.\n\nLine three after an empty line.\n",
    # unicode
    "Grüße aus München — naïve café déjà vu",
    "日本語のテキストと漢字の混在した文章です。",
    "Привет, мир! Как дела?",
    "Emoji test: 🙂🚀✨ and a flag 🇫🇷 then text",
    "Mathematics: ∀x ∈ ℝ, x² ≥ 0 ⇒ √(x²) = |x|",
    "Ελληνικά κείμενα και العربية والعبرية עברית",
    "tab\tseparated\tvalues\u00a0with nbsp",
    # numbers
    "3.14159265358979323846 is pi, and e is 2.718281828",
    "The total was $1,234,567.89 on 2024-03-15 at 09:45:00.",
    "0x1F, 0b1011, 1e-9, -42, +7, 1_000_000",
    "Phone: +1 (555) 010-9999; zip 90210-1234",
    # long words
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word",
    "Donaudampfschifffahrtsgesellschaftskapitän und Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz",
    "antidisestablishmentarianism and floccinaucinihilipilification",
    "supercalifragilisticexpialidocious_identifier_name_in_snake_case = 1",
    "https://example.org/a/very/long/path/segment?query=parameter&another=value#fragment",
]
