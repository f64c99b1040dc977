"""The whole record (Code of Practice 6.57, 6.63, 6.72-6.76): a pupil's history, the export for
the next school or a subject access request, the EHC evidence pack, the provision map and the
retention review. Built from the archive; nothing here changes a pupil's record except the
notes of leaving, legal hold and export that the commands make."""
