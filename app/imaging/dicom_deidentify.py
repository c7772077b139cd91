"""De-identify a DICOM file for export, keeping its pixels exactly.

A conservative reading of the Basic Application Level Confidentiality Profile (DICOM PS3.15
Annex E, Table E.1-1): the patient's and the study's identifying attributes are emptied where
the standard requires them present (type 2) and removed elsewhere. Beyond the attributes
listed here, every person name, date, time, age and free text anywhere in the file
(sequences included) goes, and so does every attribute whose keyword marks a place, a person,
a reason, a comment, a description or an identifier. Private tags, overlays, curves, the
preamble and the file meta's optional elements are removed; instance UIDs are replaced by
keyed hashes, so the images of one study still share one (new) study UID and a second export
gives the same UIDs. Text burned into the pixels cannot be removed by rewriting tags, so a
file that declares it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import io

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from app.errors import InvalidInput
from app.imaging.dicom import PARSE_ERRORS, said

# Type 2 attributes of the patient, study and content modules: kept, but empty.
_EMPTIED = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyDate", "StudyTime", "StudyID", "ReferringPhysicianName", "ContentDate",
    "ContentTime",
})  # fmt: skip
# Identifying text that is neither a name, a date nor a time (those go by their VR).
_REMOVED = frozenset({
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "PatientSize",
    "PatientWeight", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "PatientComments", "MilitaryRank", "BranchOfService", "MedicalRecordLocator",
    "IssuerOfPatientID", "CountryOfResidence", "RegionOfResidence", "PatientState",
    "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus",
    "PatientInsurancePlanCodeSequence", "PatientReligiousPreference",
    "ResponsibleOrganization", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName",
    "DeviceSerialNumber", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "RequestingService", "StudyDescription", "SeriesDescription", "ProtocolName",
    "AdmittingDiagnosesDescription", "AdmittingDiagnosesCodeSequence", "ImageComments",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription",
    "RequestedProcedureDescription", "RequestedProcedureID", "ScheduledProcedureStepID",
    "ScheduledProcedureStepDescription", "RequestAttributesSequence",
    "ReferencedPatientSequence", "ReferencedPatientPhotoSequence", "ReferencedStudySequence",
    "AdmissionID", "IssuerOfAdmissionIDSequence", "PatientAge", "TextComments",
    "DerivationDescription", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
})  # fmt: skip
# Value representations that carry a person, a moment, an age, or free text (comments,
# reasons, findings), which may name anyone.
_REMOVED_VRS = frozenset({"PN", "DA", "DT", "TM", "AS", "LT", "ST", "UT"})
# Parts of keywords that mark identifying attributes the list above does not name: where,
# by whom, why, for whom, and any identifier. Tested on the keyword, so new attributes of
# these kinds go too.
_REMOVED_PARTS = ("Comment", "Description", "Institution", "Station", "Location", "Address",
                  "Telephone", "Physician", "Operator", "Reason", "Requesting", "Admitting",
                  "Patient", "Occupation")  # fmt: skip
_KEPT = frozenset({"PatientIdentityRemoved", "PatientOrientation", "PatientPosition"})
# What a Part 10 file's meta group needs; the rest (private information, source AE) goes.
_FILE_META_KEPT = frozenset({
    "FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID",
    "ImplementationVersionName",
})  # fmt: skip
# UIDs that identify an instance, a study or a series (class and syntax UIDs stay).
_REPLACED_UIDS = frozenset({
    "FrameOfReferenceUID", "SynchronizationFrameOfReferenceUID", "IrradiationEventUID",
    "ConcatenationUID", "DimensionOrganizationUID", "StorageMediaFileSetUID",
    "ReferencedFrameOfReferenceUID", "RelatedFrameOfReferenceUID", "DoseReferenceUID",
    "FiducialUID", "TargetUID",
})  # fmt: skip
METHOD = "SamDSK export: PS3.15 basic profile (conservative), new UIDs"  # LO: 64 at most


def deidentify_dicom(data: bytes, *, uid_key: bytes) -> bytes:
    """The file without its identifying attributes; ``uid_key`` keys the new UIDs (the same
    key and UID give the same new UID). Raises InvalidInput for a file that cannot be read,
    or one that declares text burned into its pixels."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except PARSE_ERRORS as exc:
        raise InvalidInput(f"corrupt DICOM: {said(exc)}") from exc
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise InvalidInput(
            "its DICOM header declares text burned into the pixels (BurnedInAnnotation YES), "
            "which de-identification cannot remove"
        )
    try:
        return _rewritten(ds, uid_key)
    except (*PARSE_ERRORS, RuntimeError) as exc:  # read at upload, yet odd in another way
        raise InvalidInput(f"its DICOM header cannot be rewritten: {said(exc)}") from exc


def _rewritten(ds: Dataset, uid_key: bytes) -> bytes:
    ds.remove_private_tags()
    # Curves (50xx) and overlays (60xx) may hold drawn or written text.
    for tag in [e.tag for e in ds if e.tag.group % 2 == 0 and e.tag.group >> 8 in (0x50, 0x60)]:
        del ds[tag]
    ds.walk(lambda dataset, element: _clean(dataset, element, uid_key))
    file_meta = ds.file_meta
    for element in list(file_meta):
        if element.keyword not in _FILE_META_KEPT:
            del file_meta[element.tag]
    if "MediaStorageSOPInstanceUID" in file_meta:
        instance = str(file_meta.MediaStorageSOPInstanceUID)
        file_meta.MediaStorageSOPInstanceUID = UID(new_uid(instance, uid_key))
    elif "SOPInstanceUID" in ds:  # replaced by the walk already
        file_meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    ds.preamble = b"\x00" * 128  # free bytes before "DICM": anything may have been put there
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def _clean(dataset: Dataset, element: DataElement, uid_key: bytes) -> None:
    keyword = element.keyword
    if keyword in _EMPTIED:
        element.value = None
    elif keyword in _REMOVED or element.VR in _REMOVED_VRS or _identifying(keyword):
        del dataset[element.tag]
    elif element.VR == "UI" and (keyword.endswith("InstanceUID") or keyword in _REPLACED_UIDS):
        value = element.value
        if isinstance(value, MultiValue | list):
            element.value = [new_uid(str(uid), uid_key) for uid in value]
        elif value:
            element.value = new_uid(str(value), uid_key)


def _identifying(keyword: str) -> bool:
    if not keyword:  # an attribute this dictionary does not know: nobody can vouch for it
        return True
    if keyword in _KEPT:
        return False
    identifier = keyword.endswith(("ID", "IDs")) and not keyword.endswith(("UID", "UIDs"))
    return identifier or any(part in keyword for part in _REMOVED_PARTS)


def new_uid(uid: str, uid_key: bytes) -> str:
    """A UID under the ``2.25`` root (a 128-bit number, PS3.5 B.2) derived from ``uid`` by a
    keyed hash: stable for one key, and not reversible without it."""
    digest = hmac.new(uid_key, uid.encode(), hashlib.sha256).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"
