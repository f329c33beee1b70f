"""MONAI dictionary transforms from a Clip to the model's input tensor."""
