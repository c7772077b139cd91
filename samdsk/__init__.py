"""SamDSK: label-efficient segmentation with SAM proposals and domain knowledge."""
