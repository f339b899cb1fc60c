"""Words, figures and reports for a screen (never streamlit itself): the pages' helpers, the HTML report. Layer 5."""
