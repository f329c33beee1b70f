"""Reading cine files (DICOM, video exports, NumPy) into a Clip, within limits."""
