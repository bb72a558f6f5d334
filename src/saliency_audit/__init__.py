"""saliency-audit: is a saliency map of a medical-image classifier trustworthy for localization?

Reproduces Arun et al., "Assessing the Trustworthiness of Saliency Maps for Localizing
Abnormalities in Medical Imaging", Radiology: AI 2021, as a Snakemake workflow.
"""

__version__ = "0.1.0"
