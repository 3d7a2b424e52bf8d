"""HL7 v2 intake: messages from the record systems (MLLP listener, mllp_server.py) through the
gateway's pipeline (hl7v2.py: sender, idempotency, one transaction, ACK); one handler per event
(events.py); the return path of referrals (return_path.py). Never logs message content."""
