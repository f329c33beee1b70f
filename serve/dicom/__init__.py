"""The DICOM side of the scoring service: the node, DICOMweb, intake, spool, SR out."""
