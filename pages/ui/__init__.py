"""Streamlit widgets the pages share. Words and logic come from pneumo; only st calls live here."""
