"""The software versions that produced the results and the configuration used (report provenance)."""

import yaml

from saliency_audit import io
from saliency_audit.report.versions import software_versions
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    versions = software_versions(with_r=snakemake.params.stats)
    io.write_csv(snakemake.output.versions, versions)
    with io.atomic_path(snakemake.output.config) as tmp:
        tmp.write_text(
            "# The configuration this run used (config file + command line, schema defaults filled in)\n"
            + yaml.safe_dump(dict(snakemake.params.config), sort_keys=False)
        )
    log.info("%d components", len(versions))
