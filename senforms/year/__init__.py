"""The SENCO's year (Code of Practice 6.64-6.66): the pupil roll, reviews issued before they
fall due, the weekly digest and the annual report to parents, issued by the daily round."""
