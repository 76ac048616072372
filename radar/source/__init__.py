"""From a log message to the line of code that logged it.

:mod:`radar.source.index` parses source folders with tree-sitter into an index of
logging statements (message templates with constant parts and slots);
:mod:`radar.source.match` links log templates or raw lines to them; and
:mod:`radar.source.annotate` adds the linked statement to each explained event of
result records.
"""
