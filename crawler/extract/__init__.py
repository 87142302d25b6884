"""Product extraction from single HTML pages, split by concern (lower modules first):

- ``text``: text/URL helpers; ``document``: the page model (``Document``, ``load_document``);
- ``structured``: schema.org nodes from JSON-LD, microdata, RDFa (extruct) and OpenGraph;
- ``fields``: prices, currencies, availability, gender (on ``fittingroom.values``);
- ``images``, ``offers``: image candidates and schema.org offers;
- ``product``: the main product's fields from schema.org nodes; ``meta``: OpenGraph/meta tags;
- ``patterns``: common DOM patterns (elements named sku/brand, data-layer brand, GTINs);
- ``heuristics``: visible-page heuristics;
- ``page``: the entry points ``parse_page``, ``parse_document``, ``extract_product``,
  ``product_to_dict`` (``crawler.site_rules`` sits between ``fields`` and ``page``).
"""
