"""The client-facing words of the plan in Finnish (suomi) and English: headings, plain status
words and date formats. Plain language, solutions first (seed 002, "selkeä, kuka vie prosessia
eteenpäin"); never a code, a system URL or an identifier.
"""

from __future__ import annotations

from datetime import date

LANGUAGES = ("fi", "en")

TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Suunnitelmani",
        "plan_for": "Suunnitelma: {name}",
        "valid": "Voimassa {start}\N{EN DASH}{end}",
        "valid_from": "Voimassa {start} alkaen",
        "solution": "Sovittu ratkaisu",
        "coordinator": "Kuka vie asiaani eteenpäin",
        "coordinator_since": "Asiakasvastaavasi {since} alkaen",
        "coordinator_missing": "Asiakasvastaavaa ei ole vielä nimetty. Kysy asiasta yhteisellä "
        "vastaanotolla.",
        "contact_missing": "Yhteystiedot saat organisaatiosta: {organization}.",
        "goals": "Tavoitteeni",
        "goals_missing": "Tavoitetta ei ole vielä kirjattu. Kerro se omin sanoin "
        "asiakasvastaavalle.",
        "own_words": "Omin sanoin",
        "goal_by": "Tavoite {date} mennessä",
        "responsibilities": "Kuka tekee mitä ja milloin",
        "responsibilities_missing": "Vastuita ei ole vielä sovittu.",
        "who": "Kuka",
        "what": "Mitä",
        "when": "Milloin",
        "status": "Tilanne",
        "by": "{date} mennessä",
        "review": "Milloin palaamme tähän",
        "review_on": "Palaamme suunnitelmaan {date}.",
        "review_who": "Tapaamisen järjestää {who}.",
        "review_missing": "Seuraavaa tapaamista ei ole vielä sovittu. Asiakasvastaava sopii sen "
        "kanssasi.",
        "peer": "Vertaistuki ja kokemusasiantuntija",
        "peer_text": "Sinulla on mahdollisuus vertaistukeen ja kokemusasiantuntijan tukeen: "
        "ihmiseen, jolla on omaa kokemusta samanlaisesta tilanteesta.",
        "peer_offered": "Tarjottu {date}",
        "peer_by": "tarjosi {who}",
        "peer_service": "{who}: {status}",
        "peer_ask": "Jos haluat vertaistukea, kerro asiakasvastaavalle.",
        "overlaps": "Päällekkäisyydet",
        "overlap_several": "{service}: {organizations} samaan aikaan{period}",
        "overlap_duplicate": "{service} on sovittu kahdesti: {organizations}{period}",
        "and": "ja",
        "other_org": "toinen organisaatio",
        "overlaps_text": "Nämä palvelut näyttävät menevän päällekkäin. Käydään yhdessä läpi, "
        "mitä todella käytät.",
        "network": "Verkostoni",
        "network_text": "Kuvassa sinä olet keskellä. Asiakasvastaava on korostettu; ympärillä "
        "ovat ne, jotka tekevät kanssasi töitä, ja mitä kukin tekee.",
        "network_title": "Verkostoni: {name} ja hänen palveluverkostonsa",
        "you": "Sinä",
        "svg_coordinator": "Asiakasvastaava",
        "feedback": "Miten voin antaa palautetta",
        "feedback_text": "Voit vaikuttaa suunnitelmaan ja antaa palautetta sen jokaisessa "
        "vaiheessa: kun suunnitelma sovitaan, verkostotapaamisessa, kun työntekijä vaihtuu, "
        "seurannassa ja lopuksi.",
        "feedback_how": "Kerro palautteesi asiakasvastaavallesi {name}.",
        "feedback_how_unnamed": "Kerro palautteesi seuraavalla käynnillä.",
        "phone": "Puhelin",
        "email": "Sähköposti",
        "url": "Verkossa",
        "other": "Yhteys",
        "printed": "Tulostettu {date}",
        "hidden_note": "Tässä näkyy vain se, mihin tulostaja on saanut luvan.",
    },
    "en": {
        "title": "My plan",
        "plan_for": "Plan: {name}",
        "valid": "Valid {start}\N{EN DASH}{end}",
        "valid_from": "Valid from {start}",
        "solution": "The solution we agreed",
        "coordinator": "Who drives my process",
        "coordinator_since": "Your coordinator since {since}",
        "coordinator_missing": "No coordinator has been named yet. Ask about it at your joint "
        "appointment.",
        "contact_missing": "You can reach them through: {organization}.",
        "goals": "My goal",
        "goals_missing": "No goal is written down yet. Tell your coordinator in your own words.",
        "own_words": "In my own words",
        "goal_by": "Goal by {date}",
        "responsibilities": "Who does what, and by when",
        "responsibilities_missing": "No responsibilities have been agreed yet.",
        "who": "Who",
        "what": "What",
        "when": "By when",
        "status": "Where it stands",
        "by": "by {date}",
        "review": "When we return to this",
        "review_on": "We return to the plan on {date}.",
        "review_who": "The meeting is arranged by {who}.",
        "review_missing": "The next meeting is not agreed yet. Your coordinator will agree it "
        "with you.",
        "peer": "Peer support and experience experts",
        "peer_text": "You can have peer support and the support of an experience expert: someone "
        "who has been in a similar situation.",
        "peer_offered": "Offered on {date}",
        "peer_by": "offered by {who}",
        "peer_service": "{who}: {status}",
        "peer_ask": "If you would like peer support, tell your coordinator.",
        "overlaps": "Overlaps",
        "overlap_several": "{service}: {organizations} at the same time{period}",
        "overlap_duplicate": "{service} has been agreed twice: {organizations}{period}",
        "and": "and",
        "other_org": "another organisation",
        "overlaps_text": "These services seem to overlap. Let us go through together what you "
        "really use.",
        "network": "My network",
        "network_text": "You are in the middle of the picture. Your coordinator is highlighted; "
        "around you are the people who work with you, and what each of them does.",
        "network_title": "My network: {name} and their service network",
        "you": "You",
        "svg_coordinator": "Your coordinator",
        "feedback": "How to give feedback",
        "feedback_text": "You can influence the plan and give feedback at every stage: when the "
        "plan is agreed, at network meetings, when a worker changes, at follow-up and at the end.",
        "feedback_how": "Tell your coordinator {name}.",
        "feedback_how_unnamed": "Tell us at your next appointment.",
        "phone": "Phone",
        "email": "Email",
        "url": "Online",
        "other": "Contact",
        "printed": "Printed on {date}",
        "hidden_note": "This shows only what the person printing it is allowed to see.",
    },
}

# FHIR Task.status (a required FHIR value set, not shown) in plain words (seed 000: "ottaa koppi").
TASK_STATUS: dict[str, dict[str, str]] = {
    "fi": {
        "draft": "Suunnitteilla",
        "requested": "Pyydetty, odottaa vastausta",
        "received": "Vastaanotettu",
        "accepted": "Otettu hoitoon",
        "ready": "Valmiina aloittamaan",
        "in-progress": "Käynnissä",
        "on-hold": "Tauolla",
        "completed": "Tehty",
        "rejected": "Ei voitu ottaa hoitoon",
        "cancelled": "Peruttu",
        "failed": "Ei toteutunut",
        "overdue": "myöhässä",
    },
    "en": {
        "draft": "Being planned",
        "requested": "Asked, waiting for an answer",
        "received": "Received",
        "accepted": "Taken on",
        "ready": "Ready to start",
        "in-progress": "Under way",
        "on-hold": "On hold",
        "completed": "Done",
        "rejected": "Could not be taken on",
        "cancelled": "Cancelled",
        "failed": "Did not happen",
        "overdue": "overdue",
    },
}
CLOSED_STATUSES = frozenset({"completed", "cancelled", "failed", "rejected"})

# Spelt out, not calendar.month_name: that follows the process locale.
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def text(lang: str, key: str, **values: str) -> str:
    return TEXTS[lang][key].format(**values)


def status_words(lang: str, status: str) -> str:
    return TASK_STATUS[lang].get(status, TASK_STATUS[lang]["requested"])


def format_date(lang: str, day: date | None) -> str:
    """15.1.2027 in Finnish, 15 January 2027 in English; '' when unknown."""
    if day is None:
        return ""
    if lang == "fi":
        return f"{day.day}.{day.month}.{day.year}"
    return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
