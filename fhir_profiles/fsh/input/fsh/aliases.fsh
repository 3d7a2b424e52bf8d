// Code systems and identifier systems used by name in the other FSH files.
Alias: $base = https://fhir-plan-gateway.example
Alias: $loinc = http://loinc.org
Alias: $task-code = http://hl7.org/fhir/CodeSystem/task-code
Alias: $consentscope = http://terminology.hl7.org/CodeSystem/consentscope
Alias: $v3-ParticipationType = http://terminology.hl7.org/CodeSystem/v3-ParticipationType
Alias: $v3-Confidentiality = http://terminology.hl7.org/ValueSet/v3-ConfidentialityClassification
Alias: $hetu = urn:oid:1.2.246.21
Alias: $sote-org = urn:oid:1.2.246.537.6.202.2008
Alias: $terhikki = urn:oid:1.2.246.537.26
Alias: $coordinator-role = https://fhir-plan-gateway.example/CodeSystem/coordinator-role
Alias: $plan-category = https://fhir-plan-gateway.example/CodeSystem/plan-category
Alias: $task-type = https://fhir-plan-gateway.example/CodeSystem/task-type
Alias: $stage-feedback = https://fhir-plan-gateway.example/Questionnaire/stage-feedback
