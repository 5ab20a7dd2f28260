"""The camera's world: rendered drug packages with printed labels and barcodes, counting trays with pills, each
with its ground truth, and a camera that serves those frames over a real video protocol."""
