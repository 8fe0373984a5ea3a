"""What stylecam knows about the paintings it ships, for the ONNX metadata.

Style name -> title, artist, year, copyright note. Unknown names get "unknown" fields
that the user can fill with the --painting/--artist/--year/--licence/--source flags.
"""
from __future__ import annotations

from pathlib import Path

PAINTINGS = {
    "wave": ("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1830-1832", "Public domain (artist d. 1849)"),
    "muse": ("La Muse", "Pablo Picasso", "1935", "Not public domain: Picasso d. 1973, protected in life+70 countries until end of 2043"),
    "scream": ("The Scream", "Edvard Munch", "1893", "Public domain (artist d. 1944)"),
    "starry_night": ("The Starry Night", "Vincent van Gogh", "1889", "Public domain (artist d. 1890)"),
    "udnie": ("Udnie (Young American Girl, The Dance)", "Francis Picabia", "1913",
              "Public domain in the US (pre-1929) and in life+70 countries since 2024 (artist d. 1953)"),
    "composition_vii": ("Composition VII", "Wassily Kandinsky", "1913", "Public domain (artist d. 1944)"),
    "shipwreck": ("The Shipwreck of the Minotaur", "J. M. W. Turner", "c. 1810", "Public domain (artist d. 1851)"),
    "mosaic": ("Mosaic (stained-glass picture of a woman)", "unknown", "unknown", "Unknown: origin of the image not documented"),
    "candy": ("Candy (abstract painting)", "unknown", "unknown", "Unknown: origin of the image not documented"),
    "feathers": ("Feathers", "unknown", "unknown", "Unknown: origin of the image not documented"),
    "rain_princess": ("Rain Princess", "Leonid Afremov", "contemporary", "Not public domain: Afremov d. 2019"),
    "woman_with_hat": ("Woman with a Hat", "Henri Matisse", "1905", "Public domain in the US (pre-1929) and in life+70 countries since 2025 (artist d. 1954)"),
}


def painting_info(name: str) -> dict[str, str]:
    """{painting, artist, year, licence} for a style name ("unknown" fields when not catalogued)."""
    title, artist, year, licence = PAINTINGS.get(name, ("unknown", "unknown", "unknown", "unknown"))
    return {"painting": title, "artist": artist, "year": year, "licence": licence}


def painting_metadata(name: str, style_image: str, painting: str = "", artist: str = "", year: str = "",
                      source: str = "", licence: str = "") -> dict[str, str]:
    """{painting, artist, year, licence, source} a style model records: the values given, else the
    catalogue's for ``name`` (painting_info); source defaults to the file name of ``style_image``."""
    info = painting_info(name)
    return {"painting": painting or info["painting"], "artist": artist or info["artist"],
            "year": year or info["year"], "licence": licence or info["licence"],
            "source": source or Path(style_image).name}
