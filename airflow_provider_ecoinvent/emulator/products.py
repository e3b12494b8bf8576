"""What the emulator's synthetic datasets are made of: geographies, products and activity types.

Plain data and the two pure functions that turn a dataset's hash into its product, activity type,
route and geography, and those into an activity name. ``catalogue.py`` builds datasets and the search
index from them; keeping the ~350 lines of reference data apart keeps the catalogue's logic readable.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ACTIVITY_TYPES",
    "ACTIVITY_TYPE_SLOTS",
    "GEOGRAPHIES",
    "PRODUCTS",
    "Product",
    "activity_name",
    "choices",
]

#: ~30 real geographies in ecoinvent's display form (the search filter needs exactly this form).
GEOGRAPHIES = (
    "Global (GLO)",
    "Rest-of-World (RoW)",
    "Europe (RER)",
    "Europe without Switzerland (Europe without Switzerland)",
    "Switzerland (CH)",
    "Germany (DE)",
    "France (FR)",
    "Italy (IT)",
    "Spain (ES)",
    "Austria (AT)",
    "Netherlands (NL)",
    "Poland (PL)",
    "Sweden (SE)",
    "Norway (NO)",
    "United Kingdom (GB)",
    "United States (US)",
    "Canada (CA)",
    "Mexico (MX)",
    "Brazil (BR)",
    "Chile (CL)",
    "Peru (PE)",
    "China (CN)",
    "India (IN)",
    "Japan (JP)",
    "South Korea (KR)",
    "Indonesia (ID)",
    "Australia (AU)",
    "South Africa (ZA)",
    "Nigeria (NG)",
    "Egypt (EG)",
    "Quebec, Canada (CA-QC)",
    "Asia (RAS)",
)


@dataclasses.dataclass(frozen=True)
class Product:
    name: str
    unit: str
    isic_section: str
    isic_class: str
    sectors: tuple[str, ...]
    routes: tuple[str, ...]


_ELEC = ("Electricity",)
PRODUCTS = (
    Product(
        "electricity, high voltage",
        "kWh",
        "D - Electricity, gas, steam and air conditioning supply",
        "3510:Electric power generation, transmission and distribution",
        _ELEC,
        (
            "electricity production, hard coal",
            "electricity production, natural gas, combined cycle power plant",
            "electricity production, hydro, run-of-river",
            "electricity production, nuclear, pressure water reactor",
            "electricity production, wind, 1-3MW turbine, onshore",
        ),
    ),
    Product(
        "electricity, low voltage",
        "kWh",
        "D - Electricity, gas, steam and air conditioning supply",
        "3510:Electric power generation, transmission and distribution",
        _ELEC,
        (
            "electricity production, photovoltaic, 3kWp slanted-roof installation, multi-Si, panel, mounted",
            "electricity voltage transformation from medium to low voltage",
        ),
    ),
    Product(
        "heat, district or industrial, natural gas",
        "MJ",
        "D - Electricity, gas, steam and air conditioning supply",
        "3530:Steam and air conditioning supply",
        ("Heat",),
        (
            "heat production, natural gas, at industrial furnace >100kW",
            "heat and power co-generation, natural gas, conventional power plant, 100MW electrical",
        ),
    ),
    Product(
        "cement, Portland",
        "kg",
        "C - Manufacturing",
        "2394:Manufacture of cement, lime and plaster",
        ("Cement & Concrete",),
        ("cement production, Portland",),
    ),
    Product(
        "concrete, normal strength",
        "m3",
        "C - Manufacturing",
        "2395:Manufacture of articles of concrete, cement and plaster",
        ("Cement & Concrete",),
        (
            "concrete production, for building construction, with cement CEM II/A",
            "concrete production, 30-32MPa, ready-mix, with cement, Portland",
        ),
    ),
    Product(
        "steel, low-alloyed",
        "kg",
        "C - Manufacturing",
        "2410:Manufacture of basic iron and steel",
        ("Metals",),
        ("steel production, converter, low-alloyed", "steel production, electric, low-alloyed"),
    ),
    Product(
        "aluminium, primary, ingot",
        "kg",
        "C - Manufacturing",
        "2420:Manufacture of basic precious and other non-ferrous metals",
        ("Metals",),
        ("aluminium production, primary, ingot",),
    ),
    Product(
        "copper, cathode",
        "kg",
        "C - Manufacturing",
        "2420:Manufacture of basic precious and other non-ferrous metals",
        ("Metals",),
        ("copper production, cathode, solvent extraction and electrowinning process",),
    ),
    Product(
        "polyethylene, high density, granulate",
        "kg",
        "C - Manufacturing",
        "2013:Manufacture of plastics and synthetic rubber in primary forms",
        ("Plastics", "Chemicals"),
        ("polyethylene production, high density, granulate",),
    ),
    Product(
        "polyethylene terephthalate, granulate, bottle grade",
        "kg",
        "C - Manufacturing",
        "2013:Manufacture of plastics and synthetic rubber in primary forms",
        ("Plastics", "Chemicals"),
        ("polyethylene terephthalate production, granulate, bottle grade",),
    ),
    Product(
        "ammonia, anhydrous, liquid",
        "kg",
        "C - Manufacturing",
        "2012:Manufacture of fertilizers and nitrogen compounds",
        ("Chemicals", "Fertilisers"),
        ("ammonia production, steam reforming, liquid", "ammonia production, partial oxidation, liquid"),
    ),
    Product(
        "nitrogen fertiliser, as N",
        "kg",
        "C - Manufacturing",
        "2012:Manufacture of fertilizers and nitrogen compounds",
        ("Fertilisers", "Agriculture"),
        ("ammonium nitrate production", "urea production"),
    ),
    Product(
        "sulfuric acid",
        "kg",
        "C - Manufacturing",
        "2011:Manufacture of basic chemicals",
        ("Chemicals",),
        ("sulfuric acid production",),
    ),
    Product(
        "flat glass, uncoated",
        "kg",
        "C - Manufacturing",
        "2310:Manufacture of glass and glass products",
        ("Glass",),
        ("flat glass production, uncoated",),
    ),
    Product(
        "paper, woodfree, uncoated",
        "kg",
        "C - Manufacturing",
        "1701:Manufacture of pulp, paper and paperboard",
        ("Pulp & Paper",),
        ("paper production, woodfree, uncoated, at integrated mill",),
    ),
    Product(
        "sawnwood, softwood, raw, dried (u=20%)",
        "m3",
        "C - Manufacturing",
        "1610:Sawmilling and planing of wood",
        ("Wood",),
        ("sawing and drying, softwood, raw",),
    ),
    Product(
        "wheat grain",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("wheat production", "wheat grain production, organic"),
    ),
    Product(
        "maize grain",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("maize grain production", "maize grain production, irrigated"),
    ),
    Product(
        "rice, non-basmati",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0112:Growing of rice",
        ("Agriculture",),
        ("rice production, non-basmati",),
    ),
    Product(
        "soybean",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0111:Growing of cereals (except rice), leguminous crops and oil seeds",
        ("Agriculture",),
        ("soybean production",),
    ),
    Product(
        "cow milk",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0141:Raising of cattle and buffaloes",
        ("Agriculture", "Animal production"),
        ("milk production, from cow",),
    ),
    Product(
        "natural gas, high pressure",
        "m3",
        "B - Mining and quarrying",
        "0620:Extraction of natural gas",
        ("Fuels",),
        ("natural gas production",),
    ),
    Product(
        "petrol, unleaded",
        "kg",
        "C - Manufacturing",
        "1920:Manufacture of refined petroleum products",
        ("Fuels",),
        ("petroleum refinery operation",),
    ),
    Product(
        "diesel, low-sulfur",
        "kg",
        "C - Manufacturing",
        "1920:Manufacture of refined petroleum products",
        ("Fuels",),
        ("diesel production, low-sulfur, petroleum refinery operation",),
    ),
    Product(
        "hydrogen, gaseous, low pressure",
        "kg",
        "C - Manufacturing",
        "2011:Manufacture of basic chemicals",
        ("Chemicals", "Fuels"),
        ("hydrogen production, gaseous, petroleum refinery operation", "hydrogen production, PEM electrolysis"),
    ),
    Product(
        "transport, freight, lorry 16-32 metric ton, EURO6",
        "tkm",
        "H - Transportation and storage",
        "4923:Freight transport by road",
        ("Transport",),
        ("transport, freight, lorry 16-32 metric ton, EURO6",),
    ),
    Product(
        "transport, freight train",
        "tkm",
        "H - Transportation and storage",
        "4912:Freight rail transport",
        ("Transport",),
        ("transport, freight train, electricity", "transport, freight train, diesel"),
    ),
    Product(
        "transport, freight, sea, container ship",
        "tkm",
        "H - Transportation and storage",
        "5012:Sea and coastal freight water transport",
        ("Transport",),
        ("transport, freight, sea, container ship",),
    ),
    Product(
        "tap water",
        "kg",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3600:Water collection, treatment and supply",
        ("Water",),
        ("tap water production, conventional treatment", "tap water production, underground water without treatment"),
    ),
    Product(
        "wastewater, average",
        "m3",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3700:Sewerage",
        ("Waste treatment",),
        ("treatment of wastewater, average, wastewater treatment",),
    ),
    Product(
        "municipal solid waste",
        "kg",
        "E - Water supply; sewerage, waste management and remediation activities",
        "3821:Treatment and disposal of non-hazardous waste",
        ("Waste treatment",),
        ("treatment of municipal solid waste, incineration", "treatment of municipal solid waste, sanitary landfill"),
    ),
    Product(
        "lithium-ion battery, rechargeable, prismatic",
        "kg",
        "C - Manufacturing",
        "2720:Manufacture of batteries and accumulators",
        ("Electronics",),
        ("battery production, Li-ion, rechargeable, prismatic",),
    ),
    Product(
        "photovoltaic panel, multi-Si wafer",
        "m2",
        "C - Manufacturing",
        "2610:Manufacture of electronic components and boards",
        ("Electronics", "Electricity"),
        ("photovoltaic panel production, multi-Si wafer",),
    ),
    Product(
        "cotton fibre",
        "kg",
        "A - Agriculture, forestry and fishing",
        "0116:Growing of fibre crops",
        ("Textiles", "Agriculture"),
        ("cotton fibre production",),
    ),
)

#: Activity types, weighted by how often each occurs (20 slots in all).
_ACTIVITY_TYPES = (
    ("ordinary transforming activity", 11),
    ("market activity", 6),
    ("market group", 1),
    ("production mix", 1),
    ("import activity", 1),
)
ACTIVITY_TYPE_SLOTS = tuple(name for name, weight in _ACTIVITY_TYPES for _ in range(weight))
ACTIVITY_TYPES = tuple(name for name, _ in _ACTIVITY_TYPES)


def choices(digest: bytes) -> tuple[int, int, int, int]:
    """Product, activity-type slot, route and geography indexes from a dataset's hash."""
    product_index = int.from_bytes(digest[0:2], "big") % len(PRODUCTS)
    route_index = digest[3] % len(PRODUCTS[product_index].routes)
    return product_index, digest[2] % len(ACTIVITY_TYPE_SLOTS), route_index, digest[4] % len(GEOGRAPHIES)


def activity_name(product: Product, activity_type: str, route: str) -> str:
    if activity_type == "market activity":
        return f"market for {product.name}"
    if activity_type == "market group":
        return f"market group for {product.name}"
    if activity_type == "production mix":
        return f"{product.name}, production mix"
    if activity_type == "import activity":
        return f"{product.name}, import from RoW"
    return route
