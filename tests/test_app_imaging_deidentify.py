"""De-identification of uploaded images for export: identifying metadata goes, pixels stay."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image, PngImagePlugin

from app.errors import InvalidInput
from app.imaging import decode_image
from app.imaging.deidentify import deidentify_image
from tests.image_fixtures import array_file, dicom_file, jpeg_with_orientation, tiff_rgb16

KEY = b"a project's key"
MAX = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}
PATIENT = "DOE^JANE"
PATIENT_ID = "MRN-0042137"


def ramp(height: int = 24, width: int = 32, channels: int = 0) -> npt.NDArray[np.uint8]:
    rows = np.arange(height * width * max(channels, 1), dtype=np.uint32) * 7 % 251
    shape = (height, width, channels) if channels else (height, width)
    return rows.astype(np.uint8).reshape(shape)


def identified_dicom(pixels: npt.NDArray[Any], *, study: str, **extra: Any) -> bytes:
    """A DICOM file carrying a patient, a study, dates, private and overlay elements."""
    ds = pydicom.dcmread(io.BytesIO(dicom_file(pixels)))
    ds.PatientName = PATIENT
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19610317"
    ds.PatientAge = "065Y"
    ds.PatientAddress = "12 Harbour Road, Bergen"
    ds.InstitutionName = "St Olav Endoscopy"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.StudyDate, ds.StudyTime = "20261104", "101500"
    ds.AcquisitionDateTime = "20261104101512"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".1"
    ds.AccessionNumber = "ACC77812"
    ds.add_new(0x00091001, "LO", "private vendor note: Jane Doe")
    ds.add_new(0x60000022, "LO", "overlay: Jane Doe")
    source = pydicom.Dataset()  # nested: names and UIDs inside sequences go too
    source.ReferencedSOPInstanceUID = study + ".9"
    source.PersonName = "ROE^RICHARD"
    ds.SourceImageSequence = [source]
    # Where the lists name nothing: the preamble, the file meta's private information, free
    # text, and attributes of places and reasons.
    ds.preamble = b"DOE^JANE".ljust(128, b"\x00")
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ds.file_meta.PrivateInformation = b"PRIVINFO DOE^JANE"
    ds.StudyComments = "Jane Doe, second opinion"
    ds.AcquisitionComments = "Jane Doe moved"
    ds.add_new(0x00400242, "SH", "DOE-ROOM-3")  # PerformedStationName
    ds.add_new(0x00400243, "SH", "DOE-WING")  # PerformedLocation
    ds.add_new(0x00401002, "LO", "Jane Doe: bleeding")  # ReasonForTheRequestedProcedure
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def test_a_dicom_file_loses_who_when_and_where_but_keeps_its_pixels() -> None:
    pixels = (ramp().astype(np.uint16) * 200).astype(np.uint16)
    original = identified_dicom(pixels, study="1.2.826.0.1.3680043.2.1125.7")
    clean = deidentify_image(original, "dicom", uid_key=KEY, max_pixels=MAX["max_pixels"])
    for secret in (b"DOE", b"Jane Doe", PATIENT_ID.encode(), b"19610317", b"20261104",
                   b"Harbour", b"St Olav", b"HOUSE", b"ROE", b"ACC77812", b"065Y",
                   b"1.2.826.0.1.3680043.2.1125.7"):  # fmt: skip
        assert secret not in clean, secret
    ds = pydicom.dcmread(io.BytesIO(clean))
    assert ds.PatientName == "" and ds.PatientID == "" and ds.StudyDate == ""
    assert "PatientAge" not in ds and "AcquisitionDateTime" not in ds
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    assert ds.StudyInstanceUID.startswith("2.25.")
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    nested = ds.SourceImageSequence[0]
    assert nested.ReferencedSOPInstanceUID.startswith("2.25.") and "PersonName" not in nested
    assert ds.SOPClassUID == pydicom.dcmread(io.BytesIO(original)).SOPClassUID
    stored = decode_image(original, **MAX).pixels
    np.testing.assert_array_equal(decode_image(clean, **MAX).pixels, stored)


def test_new_uids_keep_a_study_together_and_repeat_between_exports() -> None:
    study = "1.2.3.4.5"
    one = identified_dicom(ramp(), study=study)
    two = identified_dicom(ramp()[::-1].copy(), study=study)
    cleaned = [
        pydicom.dcmread(io.BytesIO(deidentify_image(data, "dicom", uid_key=key, max_pixels=999)))
        for data, key in ((one, KEY), (two, KEY), (one, KEY), (one, b"another project"))
    ]
    studies = [ds.StudyInstanceUID for ds in cleaned]
    assert studies[0] == studies[1] == studies[2] != studies[3]
    assert cleaned[0].SOPInstanceUID != cleaned[1].SOPInstanceUID
    assert all(len(uid) <= 64 for uid in studies)


def test_text_burned_into_dicom_pixels_is_refused() -> None:
    burned = identified_dicom(ramp(), study="1.2.3", BurnedInAnnotation="YES")
    with pytest.raises(InvalidInput, match="burned into the pixels"):
        deidentify_image(burned, "dicom", uid_key=KEY, max_pixels=999)


def test_png_text_chunks_go_and_its_pixel_data_is_copied_byte_for_byte() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"patient {PATIENT}")
    info.add_itxt("Author", f"id {PATIENT_ID}")
    buffer = io.BytesIO()
    Image.fromarray(ramp(channels=3)).save(buffer, "PNG", pnginfo=info)
    original = buffer.getvalue()
    clean = deidentify_image(original, "png", uid_key=KEY, max_pixels=999_999)
    assert PATIENT.encode() not in clean and PATIENT_ID.encode() not in clean
    assert b"tEXt" not in clean and b"iTXt" not in clean
    np.testing.assert_array_equal(
        decode_image(clean, **MAX).pixels, decode_image(original, **MAX).pixels
    )


def test_jpeg_exif_and_comments_go_its_orientation_stays_and_nothing_is_recompressed() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = f"patient {PATIENT}"  # ImageDescription
    buffer = io.BytesIO()
    image = Image.fromarray(ramp(channels=3))
    image.save(buffer, "JPEG", exif=exif, comment=f"MRN {PATIENT_ID}".encode(), quality=90)
    original = buffer.getvalue()
    clean = deidentify_image(original, "jpeg", uid_key=KEY, max_pixels=999_999)
    assert PATIENT.encode() not in clean and PATIENT_ID.encode() not in clean
    decoded = decode_image(clean, **MAX)
    assert (decoded.height, decoded.width) == (32, 24)  # still turned upright
    np.testing.assert_array_equal(decoded.pixels, decode_image(original, **MAX).pixels)
    scan = original.index(b"\xff\xda")
    assert original[scan:] in clean  # the compressed scan, unchanged


def test_a_plain_jpeg_keeps_every_pixel_and_gains_no_orientation() -> None:
    original = jpeg_with_orientation(ramp(channels=3), 1)
    clean = deidentify_image(original, "jpeg", uid_key=KEY, max_pixels=999_999)
    assert Image.open(io.BytesIO(clean)).getexif().get(0x0112) is None
    np.testing.assert_array_equal(
        decode_image(clean, **MAX).pixels, decode_image(original, **MAX).pixels
    )


@pytest.mark.parametrize("pixels", [ramp(), ramp(channels=3), ramp().astype(np.uint16) * 257])
def test_tiff_is_rewritten_losslessly_without_its_tags(pixels: npt.NDArray[Any]) -> None:
    original = array_file(
        pixels, "TIFF", tiffinfo={270: f"patient {PATIENT}", 306: "2026:11:04 10:15:00"}
    )
    clean = deidentify_image(original, "tiff", uid_key=KEY, max_pixels=999_999)
    assert PATIENT.encode() not in clean and b"2026:11:04" not in clean
    np.testing.assert_array_equal(decode_image(clean, **MAX).pixels, pixels)


def test_unreadable_or_16_bit_colour_tiffs_are_refused_as_on_upload() -> None:
    with pytest.raises(InvalidInput):
        deidentify_image(tiff_rgb16(np.zeros((4, 4, 3), np.uint16)), "tiff", uid_key=KEY,
                         max_pixels=999)  # fmt: skip
    with pytest.raises(InvalidInput):
        deidentify_image(b"\x89PNG\r\n", "jpeg", uid_key=KEY, max_pixels=999)


def test_unknown_public_attributes_and_foreign_app_segments_go_too() -> None:
    ds = pydicom.dcmread(io.BytesIO(identified_dicom(ramp(), study="1.2.3")))
    ds.add_new(0x00189999, "UN", b"Jane Doe MRN 999 ")  # in no dictionary
    del ds.file_meta.MediaStorageSOPInstanceUID  # read at upload without it, too
    out = io.BytesIO()
    ds.save_as(out)
    clean = deidentify_image(out.getvalue(), "dicom", uid_key=KEY, max_pixels=999)
    assert b"Jane" not in clean and b"MRN 999" not in clean
    cleaned = pydicom.dcmread(io.BytesIO(clean))
    assert cleaned.file_meta.MediaStorageSOPInstanceUID == cleaned.SOPInstanceUID

    jpeg = jpeg_with_orientation(ramp(channels=3), 1)
    fpxr = b"FPXR\x00" + f"owner {PATIENT}".encode()
    segment = b"\xff\xe2" + (len(fpxr) + 2).to_bytes(2, "big") + fpxr
    stuffed = jpeg[:2] + segment + jpeg[2:]
    clean = deidentify_image(stuffed, "jpeg", uid_key=KEY, max_pixels=999_999)
    assert PATIENT.encode() not in clean
    np.testing.assert_array_equal(
        decode_image(clean, **MAX).pixels, decode_image(jpeg, **MAX).pixels
    )


def test_a_jpeg_cut_inside_a_segment_header_is_refused_in_words() -> None:
    jpeg = jpeg_with_orientation(ramp(channels=3), 1)
    with pytest.raises(InvalidInput, match="corrupt JPEG"):
        deidentify_image(jpeg[:2] + b"\xff\xc4", "jpeg", uid_key=KEY, max_pixels=999)
    with pytest.raises(InvalidInput, match="corrupt JPEG"):
        deidentify_image(jpeg[:2] + b"\xff\xfe\x00\x01xx", "jpeg", uid_key=KEY, max_pixels=999)
