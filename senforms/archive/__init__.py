"""The record archive: every form received, every document written, and the pupil's record."""
