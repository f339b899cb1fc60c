"""The paper's protocol: configs, ADASYN, the classifiers compared, the results files and tables. Layer 4."""
