"""fittingroom services: retrieval, segmentation, try-on, eligibility, and the all-in-one app."""
