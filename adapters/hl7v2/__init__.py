"""HL7 v2 adapter: ER7 parsing (message.py), MLLP framing (mllp.py), outbound validation with
hl7apy (parse.py, the only module that imports it). Never imports the gateway."""
