"""The tables behind the emulator's LCIA catalogue (see ``lcia.py``): methods -> categories -> indicators.

Names follow ecoinvent's published LCIA implementation (github.com/ecoinvent/lcia, ``methods_mapped``
metadata of 3.9.1, 3.10 and 3.11); units and magnitudes are plausible, made up, and only shape the
synthetic scores. Append to the tables, never insert: the order fixes the indicator ids.
"""

from __future__ import annotations

from typing import Final

_GWP100: Final = "global warming potential (GWP100)"
_AE: Final = "accumulated exceedance (AE)"
_CTUE: Final = "comparative toxic unit for ecosystems (CTUe)"
_CTUH: Final = "comparative toxic unit for human (CTUh)"
_CO2: Final = "kg CO2-Eq"

Row = tuple[str, str, str, float]  # category, indicator, unit, scale


# -- the 31 core indicators: ids 1..31, in this order, with these names and units (see lcia.py) ---------

_IPCC21: Final = "IPCC 2021"
_EF31: Final = "EF v3.1"
_RECIPE_MH: Final = "ReCiPe 2016 v1.03, midpoint (H)"

CORE_ROWS: Final[tuple[tuple[str, str, str, str, float], ...]] = (
    (_IPCC21, "climate change", _GWP100, _CO2, 2.0),
    (_IPCC21, "climate change", "global warming potential (GWP20)", _CO2, 2.6),
    (_IPCC21, "climate change", "global temperature change potential (GTP100)", _CO2, 1.7),
    # The same indicator name under other categories: each (category, indicator) pair has its own id.
    (_IPCC21, "climate change: fossil", _GWP100, _CO2, 1.8),
    (_IPCC21, "climate change: biogenic", _GWP100, _CO2, 0.1),
    (_IPCC21, "climate change: land use and land use change", _GWP100, _CO2, 0.05),
    (_EF31, "climate change", _GWP100, _CO2, 2.0),
    (_EF31, "acidification", _AE, "mol H+-Eq", 0.01),
    (_EF31, "ecotoxicity: freshwater", _CTUE, "CTUe", 20.0),
    (_EF31, "energy resources: non-renewable", "abiotic depletion potential (ADP): fossil fuels", "MJ", 30.0),
    (
        _EF31,
        "eutrophication: freshwater",
        "fraction of nutrients reaching freshwater end compartment (P)",
        "kg P-Eq",
        0.001,
    ),
    (_EF31, "eutrophication: marine", "fraction of nutrients reaching marine end compartment (N)", "kg N-Eq", 0.003),
    (_EF31, "eutrophication: terrestrial", _AE, "mol N-Eq", 0.03),
    (_EF31, "human toxicity: carcinogenic", _CTUH, "CTUh", 1e-9),
    (_EF31, "human toxicity: non-carcinogenic", _CTUH, "CTUh", 1e-8),
    (_EF31, "ionising radiation: human health", "human exposure efficiency relative to u235", "kBq U235-Eq", 0.2),
    (_EF31, "land use", "soil quality index", "dimensionless", 15.0),
    (
        _EF31,
        "material resources: metals/minerals",
        "abiotic depletion potential (ADP): elements (ultimate reserves)",
        "kg Sb-Eq",
        1e-5,
    ),
    (_EF31, "ozone depletion", "ozone depletion potential (ODP)", "kg CFC-11-Eq", 1e-7),
    (_EF31, "particulate matter formation", "impact on human health", "disease incidence", 1e-7),
    (
        _EF31,
        "photochemical oxidant formation: human health",
        "tropospheric ozone concentration increase",
        "kg NMVOC-Eq",
        0.006,
    ),
    (
        _EF31,
        "water use",
        "user deprivation potential (deprivation-weighted water consumption)",
        "m3 world eq. deprived",
        0.5,
    ),
    (_RECIPE_MH, "climate change", "global warming potential (GWP1000)", _CO2, 1.9),
    (_RECIPE_MH, "acidification: terrestrial", "terrestrial acidification potential (TAP)", "kg SO2-Eq", 0.008),
    (_RECIPE_MH, "ecotoxicity: freshwater", "freshwater ecotoxicity potential (FETP)", "kg 1,4-DCB-Eq", 0.05),
    (_RECIPE_MH, "energy resources: non-renewable, fossil", "fossil fuel potential (FFP)", "kg oil-Eq", 0.6),
    (_RECIPE_MH, "eutrophication: freshwater", "freshwater eutrophication potential (FEP)", "kg P-Eq", 0.0008),
    (_RECIPE_MH, "land use", "agricultural land occupation (LOP)", "m2*a crop-Eq", 0.3),
    (_RECIPE_MH, "material resources: metals/minerals", "surplus ore potential (SOP)", "kg Cu-Eq", 0.01),
    (_RECIPE_MH, "ozone depletion", "ozone depletion potential (ODPinfinite)", "kg CFC-11-Eq", 1e-6),
    (_RECIPE_MH, "particulate matter formation", "particulate matter formation potential (PMFP)", "kg PM2.5-Eq", 0.002),
)

# -- category tables, shared by the methods that use them ----------------------------------------------


def _ef_rows(*, metals: bool) -> tuple[Row, ...]:
    """EF v3.x: EF v3.0 also splits the toxicity categories by metals."""
    tox: list[Row] = []
    for category, unit, scale in (
        ("ecotoxicity: freshwater", "CTUe", 20.0),
        ("human toxicity: carcinogenic", "CTUh", 1e-9),
        ("human toxicity: non-carcinogenic", "CTUh", 1e-8),
    ):
        indicator = _CTUE if unit == "CTUe" else _CTUH
        tox.append((category, indicator, unit, scale))
        for part in ("inorganics", "metals", "organics") if metals else ("inorganics", "organics"):
            tox.append((f"{category}, {part}", indicator, unit, scale / 3))
    return (
        ("acidification", _AE, "mol H+-Eq", 0.01),
        ("climate change", _GWP100, _CO2, 2.0),
        ("climate change: biogenic", _GWP100, _CO2, 0.1),
        ("climate change: fossil", _GWP100, _CO2, 1.8),
        ("climate change: land use and land use change", _GWP100, _CO2, 0.05),
        ("particulate matter formation", "impact on human health", "disease incidence", 1e-7),
        *tox,
        ("eutrophication: marine", "fraction of nutrients reaching marine end compartment (N)", "kg N-Eq", 0.003),
        (
            "eutrophication: freshwater",
            "fraction of nutrients reaching freshwater end compartment (P)",
            "kg P-Eq",
            1e-3,
        ),
        ("eutrophication: terrestrial", _AE, "mol N-Eq", 0.03),
        ("ionising radiation: human health", "human exposure efficiency relative to u235", "kBq U235-Eq", 0.2),
        ("land use", "soil quality index", "dimensionless", 15.0),
        ("ozone depletion", "ozone depletion potential (ODP)", "kg CFC-11-Eq", 1e-7),
        (
            "photochemical oxidant formation: human health",
            "tropospheric ozone concentration increase",
            "kg NMVOC-Eq",
            6e-3,
        ),
        ("energy resources: non-renewable", "abiotic depletion potential (ADP): fossil fuels", "MJ", 30.0),
        (
            "material resources: metals/minerals",
            "abiotic depletion potential (ADP): elements (ultimate reserves)",
            "kg Sb-Eq",
            1e-5,
        ),
        (
            "water use",
            "user deprivation potential (deprivation-weighted water consumption)",
            "m3 world eq. deprived",
            0.5,
        ),
    )


def _recipe_midpoint_rows(horizon: str) -> tuple[Row, ...]:
    """ReCiPe 2016 midpoint: the perspectives differ in the climate horizon (I: 20, H: 100, E: 1000 years)."""
    return (
        ("particulate matter formation", "particulate matter formation potential (PMFP)", "kg PM2.5-Eq", 0.002),
        ("energy resources: non-renewable, fossil", "fossil fuel potential (FFP)", "kg oil-Eq", 0.6),
        ("ecotoxicity: freshwater", "freshwater ecotoxicity potential (FETP)", "kg 1,4-DCB-Eq", 0.05),
        ("eutrophication: freshwater", "freshwater eutrophication potential (FEP)", "kg P-Eq", 0.0008),
        ("climate change", f"global warming potential ({horizon})", _CO2, 1.9),
        ("human toxicity: carcinogenic", "human toxicity potential (HTPc)", "kg 1,4-DCB-Eq", 0.04),
        ("human toxicity: non-carcinogenic", "human toxicity potential (HTPnc)", "kg 1,4-DCB-Eq", 1.2),
        ("ionising radiation", "ionising radiation potential (IRP)", "kBq Co-60-Eq", 0.1),
        ("land use", "agricultural land occupation (LOP)", "m2*a crop-Eq", 0.3),
        ("ecotoxicity: marine", "marine ecotoxicity potential (METP)", "kg 1,4-DCB-Eq", 0.07),
        ("eutrophication: marine", "marine eutrophication potential (MEP)", "kg N-Eq", 0.0005),
        ("material resources: metals/minerals", "surplus ore potential (SOP)", "kg Cu-Eq", 0.01),
        (
            "photochemical oxidant formation: human health",
            "photochemical oxidant formation potential: humans (HOFP)",
            "kg NOx-Eq",
            0.005,
        ),
        (
            "photochemical oxidant formation: terrestrial ecosystems",
            "photochemical oxidant formation potential: ecosystems (EOFP)",
            "kg NOx-Eq",
            0.005,
        ),
        ("ozone depletion", "ozone depletion potential (ODPinfinite)", "kg CFC-11-Eq", 1e-6),
        ("acidification: terrestrial", "terrestrial acidification potential (TAP)", "kg SO2-Eq", 0.008),
        ("ecotoxicity: terrestrial", "terrestrial ecotoxicity potential (TETP)", "kg 1,4-DCB-Eq", 2.0),
        ("water use", "water consumption potential (WCP)", "m3", 0.02),
    )


_DALY: Final = "DALY"
_SPECIES: Final = "species.yr"
_USD: Final = "USD 2013"
_RECIPE_ENDPOINT_ROWS: Final[tuple[Row, ...]] = (
    ("total: ecosystem quality", "ecosystem quality", _SPECIES, 1e-8),
    ("total: human health", "human health", _DALY, 1e-6),
    ("total: natural resources", "natural resources", _USD, 0.1),
    ("human health", "particulate matter formation", _DALY, 1e-6),
    ("natural resources", "energy resources: non-renewable, fossil", _USD, 0.1),
    ("ecosystem quality", "ecotoxicity: freshwater", _SPECIES, 1e-11),
    ("ecosystem quality", "eutrophication: freshwater", _SPECIES, 1e-9),
    ("ecosystem quality", "climate change: freshwater ecosystems", _SPECIES, 1e-13),
    ("human health", "climate change: human health", _DALY, 2e-6),
    ("ecosystem quality", "climate change: terrestrial ecosystems", _SPECIES, 6e-9),
    ("human health", "human toxicity: carcinogenic", _DALY, 1e-7),
    ("human health", "human toxicity: non-carcinogenic", _DALY, 3e-7),
    ("human health", "ionising radiation", _DALY, 1e-9),
    ("ecosystem quality", "land use", _SPECIES, 3e-9),
    ("ecosystem quality", "ecotoxicity: marine", _SPECIES, 1e-11),
    ("ecosystem quality", "eutrophication: marine", _SPECIES, 1e-12),
    ("natural resources", "material resources: metals/minerals", _USD, 0.002),
    ("human health", "photochemical oxidant formation: human health", _DALY, 5e-9),
    ("ecosystem quality", "photochemical oxidant formation: terrestrial ecosystems", _SPECIES, 6e-10),
    ("human health", "ozone depletion", _DALY, 5e-10),
    ("ecosystem quality", "acidification: terrestrial", _SPECIES, 2e-9),
    ("ecosystem quality", "ecotoxicity: terrestrial", _SPECIES, 2e-11),
    ("ecosystem quality", "water use: aquatic ecosystems", _SPECIES, 1e-14),
    ("human health", "water use: human health", _DALY, 4e-8),
    ("ecosystem quality", "water use: terrestrial ecosystems", _SPECIES, 2e-10),
)

_IPCC_2021_ROWS: Final[tuple[Row, ...]] = (
    ("climate change: total (excl. biogenic CO2)", _GWP100, _CO2, 2.0),
    ("climate change: fossil", _GWP100, _CO2, 1.8),
    ("climate change: fossil emissions (excl. aircraft emissions)", _GWP100, _CO2, 1.7),
    ("climate change: aircraft emissions", _GWP100, _CO2, 0.01),
    ("climate change: direct land use change", _GWP100, _CO2, 0.05),
    ("climate change: emissions from direct land use change", _GWP100, _CO2, 0.06),
    ("climate change: removals from direct land use change", _GWP100, _CO2, 0.01),
    ("climate change: biogenic (excl. CO2)", _GWP100, _CO2, 0.02),
    ("climate change: total (excl. biogenic CO2, incl. SLCFs)", _GWP100, _CO2, 2.1),
    ("climate change: fossil (excl. biogenic CO2, incl. SLCFs)", _GWP100, _CO2, 1.9),
    ("climate change: direct land use change (incl. SLCFs)", _GWP100, _CO2, 0.05),
    ("climate change: biogenic (excl. CO2, incl. SLCFs)", _GWP100, _CO2, 0.02),
    ("climate change: total (excl. biogenic CO2)", "global warming potential (GWP20)", _CO2, 2.6),
    ("climate change: total (excl. biogenic CO2)", "global warming potential (GWP500)", _CO2, 1.6),
    ("climate change: total (excl. biogenic CO2)", "global temperature change potential (GTP50)", _CO2, 1.8),
    ("climate change: total (excl. biogenic CO2)", "global temperature change potential (GTP100)", _CO2, 1.7),
)

_IPCC_2021_BIOGENIC_ROWS: Final[tuple[Row, ...]] = (
    ("climate change: total (incl. biogenic CO2)", _GWP100, _CO2, 2.0),
    ("climate change: biogenic (incl. CO2)", _GWP100, _CO2, 0.1),
    ("climate change: biogenic emissions (incl. CO2)", _GWP100, _CO2, 0.4),
    ("climate change: biogenic removals (incl. CO2)", _GWP100, _CO2, 0.3),
    ("climate change: total (incl. biogenic CO2, incl. SLCFs)", _GWP100, _CO2, 2.1),
)

_IPCC_2013_ROWS: Final[tuple[Row, ...]] = (
    ("climate change", "global warming potential (GWP100)", _CO2, 2.0),
    ("climate change", "global warming potential (GWP20)", _CO2, 2.6),
    ("climate change", "global temperature change potential (GTP100)", _CO2, 1.7),
    ("climate change", "global temperature change potential (GTP20)", _CO2, 2.4),
)

_CML_ROWS: Final[tuple[Row, ...]] = (
    (
        "material resources: metals/minerals",
        "abiotic depletion potential (ADP): elements (ultimate reserves)",
        "kg Sb-Eq",
        1e-5,
    ),
    ("energy resources: non-renewable", "abiotic depletion potential (ADP): fossil fuels", "MJ", 30.0),
    ("climate change", _GWP100, _CO2, 2.0),
    ("ozone depletion", "ozone layer depletion (ODP steady state)", "kg CFC-11-Eq", 1e-7),
    ("human toxicity", "human toxicity (HTP inf)", "kg 1,4-DCB-Eq", 1.0),
    ("ecotoxicity: freshwater", "freshwater aquatic ecotoxicity (FAETP inf)", "kg 1,4-DCB-Eq", 0.5),
    ("ecotoxicity: marine", "marine aquatic ecotoxicity (MAETP inf)", "kg 1,4-DCB-Eq", 800.0),
    ("ecotoxicity: terrestrial", "terrestrial ecotoxicity (TETP inf)", "kg 1,4-DCB-Eq", 0.005),
    ("photochemical oxidant formation", "photochemical oxidation (high NOx)", "kg ethylene-Eq", 5e-4),
    ("acidification", "acidification (incl. fate, average Europe total, A&B)", "kg SO2-Eq", 0.008),
    ("eutrophication", "eutrophication (fate not incl.)", "kg PO4-Eq", 0.003),
)

_UBP: Final = "UBP"
_ECOLOGICAL_SCARCITY_2021_ROWS: Final[tuple[Row, ...]] = tuple(
    (category, indicator, _UBP, scale)
    for category, indicator, scale in (
        ("total", "UBP", 2000.0),
        ("water use", "water resources, evaporated", 50.0),
        ("energy resources", "energy resources", 300.0),
        ("mineral resources", "mineral resources", 80.0),
        ("land use", "land use", 100.0),
        ("climate change", _GWP100, 600.0),
        ("ozone depletion", "ozone depletion", 5.0),
        ("emissions to air", "air pollutants and PM", 300.0),
        ("emissions to air", "carcinogenic substances into air", 20.0),
        ("emissions to air", "heavy metals into air", 40.0),
        ("emissions to water", "water pollutants", 60.0),
        ("emissions to water", "POP into water", 0.5),
        ("emissions to water", "heavy metals into water", 40.0),
        ("emissions to soil", "pesticides into soil", 10.0),
        ("emissions to soil", "heavy metals into soil", 20.0),
        ("emissions to air", "radioactive substances into air", 2.0),
        ("emissions to water", "radioactive substances into water", 2.0),
        ("waste disposal", "waste, non radioactive", 10.0),
        ("waste disposal", "radioactive waste to deposit", 20.0),
        ("natural resources", "biotic resources", 1.0),
    )
)

_ECOLOGICAL_SCARCITY_2013_ROWS: Final[tuple[Row, ...]] = tuple(
    (category, indicator, _UBP, scale)
    for category, indicator, scale in (
        ("total", "UBP", 1800.0),
        ("water use", "water resources, evaporated", 40.0),
        ("energy resources", "energy resources", 280.0),
        ("mineral resources", "mineral resources", 70.0),
        ("land use", "land use", 90.0),
        ("climate change", _GWP100, 550.0),
        ("ozone depletion", "ozone depletion", 6.0),
        ("emissions to air", "main air pollutants and PM", 280.0),
        ("emissions to air", "carcinogenic substances into air", 18.0),
        ("emissions to air", "heavy metals into air", 35.0),
        ("emissions to water", "water pollutants", 55.0),
        ("emissions to water", "POP into water", 0.4),
        ("emissions to water", "heavy metals into water", 35.0),
        ("emissions to soil", "pesticides into soil", 9.0),
        ("emissions to soil", "heavy metals into soil", 18.0),
        ("waste disposal", "radioactive waste to deposit", 18.0),
    )
)

_EPS_ROWS: Final[tuple[Row, ...]] = tuple(
    (category, "monetary impact value", "EUR2015", scale)
    for category, scale in (
        ("total", 0.5),
        ("emissions to air", 0.2),
        ("emissions to water", 0.01),
        ("emissions to soil", 0.005),
        ("land use", 0.02),
        ("energy resources: non-renewable, fossil", 0.1),
        ("material resources: metals", 0.15),
    )
)

_TRACI_ROWS: Final[tuple[Row, ...]] = (
    ("climate change", _GWP100, _CO2, 2.0),
    ("acidification", "acidification potential (AP)", "kg SO2-Eq", 0.009),
    ("particulate matter formation", "particulate matter formation potential (PMFP)", "kg PM2.5-Eq", 0.001),
    ("ozone depletion", "ozone depletion potential (ODP)", "kg CFC-11-Eq", 1e-7),
    ("photochemical oxidant formation", "maximum incremental reactivity (MIR)", "kg O3-Eq", 0.1),
    ("eutrophication", "eutrophication potential", "kg N-Eq", 0.005),
    ("ecotoxicity: freshwater", "ecotoxicity: freshwater", "CTUe", 20.0),
    ("human toxicity: carcinogenic", "human toxicity: carcinogenic", "CTUh", 1e-9),
    ("human toxicity: non-carcinogenic", "human toxicity: non-carcinogenic", "CTUh", 1e-8),
)

_USETOX_MIDPOINT_ROWS: Final[tuple[Row, ...]] = (
    ("ecotoxicity: freshwater", "ecotoxicity: freshwater", "CTUe", 20.0),
    ("human toxicity: carcinogenic", "human toxicity: carcinogenic", "CTUh", 1e-9),
    ("human toxicity: non-carcinogenic", "human toxicity: non-carcinogenic", "CTUh", 1e-8),
)
_USETOX_ENDPOINT_ROWS: Final[tuple[Row, ...]] = (
    ("human health", "human toxicity: carcinogenic", _DALY, 1e-8),
    ("human health", "human toxicity: non-carcinogenic", _DALY, 3e-8),
    ("ecosystem quality", "ecotoxicity: freshwater", "PDF.m3.yr", 0.1),
)

_CED_ROWS: Final[tuple[Row, ...]] = tuple(
    (category, "energy content (HHV)", "MJ-Eq", scale)
    for category, scale in (
        ("energy resources: non-renewable", 30.0),
        ("energy resources: non-renewable, biomass", 0.05),
        ("energy resources: non-renewable, fossil", 28.0),
        ("energy resources: non-renewable, nuclear", 4.0),
        ("energy resources: renewable", 3.0),
        ("energy resources: renewable, biomass", 1.5),
        ("energy resources: renewable, geothermal, solar, wind", 0.6),
        ("energy resources: renewable, water", 1.0),
    )
)

_CEXD_ROWS: Final[tuple[Row, ...]] = tuple(
    (category, "exergy content", "MJ-Eq", scale)
    for category, scale in (
        ("energy resources: non-renewable, fossil", 27.0),
        ("energy resources: non-renewable, nuclear", 4.2),
        ("energy resources: non-renewable, primary forest", 0.01),
        ("energy resources: renewable, biomass", 1.4),
        ("energy resources: renewable, kinetic (in wind), converted", 0.3),
        ("energy resources: renewable, potential (in water), converted", 0.9),
        ("energy resources: renewable, solar, converted", 0.05),
        ("material resources: metals", 0.4),
        ("material resources: minerals", 0.2),
        ("material resources: water", 0.03),
    )
)

_EDIP_ROWS: Final[tuple[Row, ...]] = (
    ("acidification", "acidification", "m2", 0.2),
    ("ecotoxicity", "chronic, in soil", "m3", 0.5),
    ("ecotoxicity", "chronic, in water", "m3", 300.0),
    ("ecotoxicity", "acute, in water", "m3", 30.0),
    ("eutrophication", "combined potential eutrophication", "kg NO3-Eq", 0.05),
    ("eutrophication", "terrestrial eutrophication", "m2", 0.3),
    ("eutrophication", "separate N potential", "kg N", 0.01),
    ("eutrophication", "separate P potential", "kg P", 0.001),
    ("climate change", _GWP100, _CO2, 2.0),
    ("human toxicity", "via air", "m3", 1e5),
    ("human toxicity", "via soil", "m3", 1.0),
    ("human toxicity", "via surface water", "m3", 50.0),
    ("photochemical ozone formation", "impact on human health", "person.ppm.h", 1e-4),
    ("photochemical ozone formation", "impact on vegetation", "m2.ppm.h", 2.0),
    ("ozone depletion", "ozone depletion potential (ODP)", "kg CFC-11-Eq", 1e-7),
    ("land filling", "bulk waste", "kg waste", 0.1),
    ("land filling", "hazardous waste", "kg waste", 0.001),
    ("land filling", "radioactive waste", "kg waste", 1e-5),
    ("land filling", "slag/ashes", "kg waste", 0.01),
)

_ILCD_ROWS: Final[tuple[Row, ...]] = (
    ("climate change", _GWP100, _CO2, 2.0),
    ("ecosystem quality", "freshwater and terrestrial acidification", "mol H+-Eq", 0.01),
    ("ecosystem quality", "freshwater ecotoxicity", "CTUe", 20.0),
    ("ecosystem quality", "freshwater eutrophication", "kg P-Eq", 0.001),
    ("ecosystem quality", "marine eutrophication", "kg N-Eq", 0.003),
    ("ecosystem quality", "terrestrial eutrophication", "mol N-Eq", 0.03),
    ("human health", "carcinogenic effects", "CTUh", 1e-9),
    ("human health", "ionising radiation", "kBq U235-Eq", 0.2),
    ("human health", "non-carcinogenic effects", "CTUh", 1e-8),
    ("human health", "ozone layer depletion", "kg CFC-11-Eq", 1e-7),
    ("human health", "photochemical ozone creation", "kg NMVOC-Eq", 0.006),
    ("human health", "respiratory effects, inorganics", "disease incidence", 1e-7),
    ("resources", "dissipated water", "m3 water-Eq", 0.5),
    ("resources", "fossils", "MJ", 30.0),
    ("resources", "land use", "points", 15.0),
    ("resources", "minerals and metals", "kg Sb-Eq", 1e-5),
)

_EN15804_CORE_ROWS: Final[tuple[Row, ...]] = (
    ("climate change: total (EF v3.0 - IPCC 2013)", _GWP100, _CO2, 2.0),
    ("climate change: fossil (EF v3.0 - IPCC 2013)", _GWP100, _CO2, 1.8),
    ("climate change: biogenic (EF v3.0 - IPCC 2013)", _GWP100, _CO2, 0.1),
    ("climate change: land use and land use change (EF v3.0 - IPCC 2013)", _GWP100, _CO2, 0.05),
    ("ozone depletion", "ozone depletion potential (ODP)", "kg CFC-11-Eq", 1e-7),
    ("acidification", _AE, "mol H+-Eq", 0.01),
    ("eutrophication: freshwater", "fraction of nutrients reaching freshwater end compartment (P)", "kg P-Eq", 1e-3),
    ("eutrophication: marine", "fraction of nutrients reaching marine end compartment (N)", "kg N-Eq", 0.003),
    ("eutrophication: terrestrial", _AE, "mol N-Eq", 0.03),
    ("photochemical oxidant formation: human health", "tropospheric ozone concentration increase", "kg NMVOC-Eq", 6e-3),
    (
        "material resources: metals/minerals",
        "abiotic depletion potential (ADP): elements (ultimate reserves)",
        "kg Sb-Eq",
        1e-5,
    ),
    ("energy resources: non-renewable", "abiotic depletion potential (ADP): fossil fuels", "MJ", 30.0),
    ("water use", "user deprivation potential (deprivation-weighted water consumption)", "m3 world eq. deprived", 0.5),
    ("climate change: total (EF v3.1 - IPCC 2021)", _GWP100, _CO2, 2.0),
    ("climate change: fossil (EF v3.1 - IPCC 2021)", _GWP100, _CO2, 1.8),
    ("climate change: biogenic (EF v3.1 - IPCC 2021)", _GWP100, _CO2, 0.1),
    ("climate change: land use and land use change (EF v3.1 - IPCC 2021)", _GWP100, _CO2, 0.05),
)

_EN15804_ADDITIONAL_ROWS: Final[tuple[Row, ...]] = (
    ("particulate matter formation", "impact on human health", "disease incidence", 1e-7),
    ("ionising radiation: human health", "human exposure efficiency relative to u235", "kBq U235-Eq", 0.2),
    ("ecotoxicity: freshwater (EF v3.0)", _CTUE, "CTUe", 20.0),
    ("human toxicity: carcinogenic", _CTUH, "CTUh", 1e-9),
    ("human toxicity: non-carcinogenic (EF v3.0)", _CTUH, "CTUh", 1e-8),
    ("land use", "soil quality index", "dimensionless", 15.0),
    ("ecotoxicity: freshwater (EF v3.1)", _CTUE, "CTUe", 20.0),
    ("human toxicity: non-carcinogenic (EF v3.1)", _CTUH, "CTUh", 1e-8),
)

#: Every method: its category table, the release that introduced it, and whether ecoinvent also ships
#: a ``no LT`` variant (long-term emissions excluded). Order fixes the ids: append, never insert.
METHODS: Final[tuple[tuple[str, tuple[Row, ...], str, bool], ...]] = (
    ("CML v4.8 2016", _CML_ROWS, "3.9", True),
    (
        "Crustal Scarcity Indicator 2020",
        (("material resources: metals/minerals", "crustal scarcity potential (CSP)", "kg Si-Eq", 0.5),),
        "3.9",
        False,
    ),
    ("Cumulative Energy Demand (CED)", _CED_ROWS, "3.9", False),
    ("Cumulative Exergy Demand (CExD)", _CEXD_ROWS, "3.9", False),
    ("EDIP 2003", _EDIP_ROWS, "3.9", True),
    ("EF v3.0", _ef_rows(metals=True), "3.9", True),
    ("EF v3.0 EN15804", _ef_rows(metals=True), "3.9", False),
    ("Ecological Scarcity 2013", _ECOLOGICAL_SCARCITY_2013_ROWS, "3.9", False),
    ("Ecological Scarcity 2021", _ECOLOGICAL_SCARCITY_2021_ROWS, "3.9", True),
    ("EPS 2020d", _EPS_ROWS, "3.9", False),
    ("ILCD 2.0 2018 midpoint", _ILCD_ROWS, "3.9", True),
    ("IPCC 2013", _IPCC_2013_ROWS, "3.9", True),
    ("ReCiPe 2016 v1.03, endpoint (E)", _RECIPE_ENDPOINT_ROWS, "3.9", True),
    ("ReCiPe 2016 v1.03, endpoint (H)", _RECIPE_ENDPOINT_ROWS, "3.9", True),
    ("ReCiPe 2016 v1.03, endpoint (I)", _RECIPE_ENDPOINT_ROWS, "3.9", True),
    ("ReCiPe 2016 v1.03, midpoint (E)", _recipe_midpoint_rows("GWP1000"), "3.9", True),
    (_RECIPE_MH, _recipe_midpoint_rows("GWP100"), "3.9", True),
    ("ReCiPe 2016 v1.03, midpoint (I)", _recipe_midpoint_rows("GWP20"), "3.9", True),
    ("TRACI v2.1", _TRACI_ROWS, "3.9", True),
    ("USEtox v2.12", _USETOX_MIDPOINT_ROWS, "3.9", False),
    (_EF31, _ef_rows(metals=False), "3.10", True),
    ("EF v3.1 EN15804", _ef_rows(metals=False), "3.10", False),
    (_IPCC21, _IPCC_2021_ROWS, "3.10", True),
    ("USEtox v2.13, midpoint", _USETOX_MIDPOINT_ROWS, "3.10", True),
    ("USEtox v2.13, endpoint", _USETOX_ENDPOINT_ROWS, "3.10", False),
    ("IPCC 2021 (incl. biogenic CO2)", _IPCC_2021_BIOGENIC_ROWS, "3.11", False),
    ("EN15804+A2 - Core impact categories and indicators", _EN15804_CORE_ROWS, "3.11", False),
    ("EN15804+A2 - Additional impact categories and indicators", _EN15804_ADDITIONAL_ROWS, "3.11", False),
)
