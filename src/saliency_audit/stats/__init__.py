"""Statistics and tables (Arun et al. 2021, Statistical analysis and Table 2).

``lmm``: LMMs ``score ~ group + (1 | image_id)`` and multcomp contrasts in R through rpy2 (the only
module that needs R, imported lazily); ``groups``: which score rows answer which question;
``table2``: PASS/FAIL logic and the supplementary tables (pure pandas); ``run``: the rules' steps.
"""
