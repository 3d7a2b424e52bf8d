// The gateway's local code systems (no national code exists for most of them).
// Every concept has a Finnish display (the CodeSystem's language is fi) and an English
// designation; the ValueSets in valuesets.fsh include each one whole.

RuleSet: En(text)
* ^designation[+].language = #en
* ^designation[=].value = {text}

RuleSet: LocalCodeSystem
* ^language = #fi
* ^caseSensitive = true
* ^experimental = false
* ^status = #active

CodeSystem: CoordinatorRole
Id: coordinator-role
Title: "Asiakasvastaavamallin roolit (roles in the client's network)"
Description: "The role a participant has in the client's network (CareTeam.participant.role): the named client coordinator, the client, a network member, a consulted expert."
* insert LocalCodeSystem
* #asiakasvastaava "Asiakasvastaava" "Nimetty asiakasvastaava, joka koordinoi asiakkaan palveluverkostoa."
* #asiakasvastaava insert En("Named client coordinator")
* #asiakas "Asiakas" "Asiakas itse verkoston jäsenenä."
* #asiakas insert En("Client")
* #verkoston-jasen "Verkoston jäsen" "Palveluverkoston jäsen, jolla on vastuu asiakassuunnitelmassa."
* #verkoston-jasen insert En("Network member")
* #konsultoitava "Konsultoitava asiantuntija" "Asiantuntija, jota konsultoidaan ilman koordinointivastuuta."
* #konsultoitava insert En("Consulted expert")

CodeSystem: ProfessionalRole
Id: professional-role
Title: "Ammattiroolit (professional roles)"
Description: "Professional roles of the service network (PractitionerRole.code, CareTeam.participant.role)."
* insert LocalCodeSystem
* #tyokykykoordinaattori "Työkykykoordinaattori"
* #tyokykykoordinaattori insert En("Work-ability coordinator")
* #omatyontekija "Omatyöntekijä"
* #omatyontekija insert En("Designated social worker")
* #terveydenhoitaja "Terveydenhoitaja"
* #terveydenhoitaja insert En("Public health nurse")
* #tyottomien-terveydenhoitaja "Työttömien terveydenhoitaja"
* #tyottomien-terveydenhoitaja insert En("Public health nurse for the unemployed")
* #sosiaalityontekija "Sosiaalityöntekijä"
* #sosiaalityontekija insert En("Social worker")
* #sosiaaliohjaaja "Sosiaaliohjaaja"
* #sosiaaliohjaaja insert En("Social counsellor")
* #kokemusasiantuntija "Kokemusasiantuntija"
* #kokemusasiantuntija insert En("Experience expert")
* #palveluohjaaja "Palveluohjaaja"
* #palveluohjaaja insert En("Service counsellor")
* #tyollisyysasiantuntija "Työllisyysasiantuntija"
* #tyollisyysasiantuntija insert En("Employment expert")
* #jarjestotyontekija "Järjestötyöntekijä"
* #jarjestotyontekija insert En("NGO worker")
* #laakari "Lääkäri"
* #laakari insert En("Physician")
* #psykologi "Psykologi"
* #psykologi insert En("Psychologist")
* #fysioterapeutti "Fysioterapeutti"
* #fysioterapeutti insert En("Physiotherapist")
* #opinto-ohjaaja "Opinto-ohjaaja"
* #opinto-ohjaaja insert En("Study counsellor")

CodeSystem: NetworkOrganizationType
Id: network-organization-type
Title: "Palveluverkoston organisaatiotyypit (network organisation types)"
Description: "Kinds of organisation in the client's service network (Organization.type)."
* insert LocalCodeSystem
* #sote-keskus "Sosiaali- ja terveyskeskus"
* #sote-keskus insert En("Health and social services centre")
* #tyokykytiimi "Työkykytiimi"
* #tyokykytiimi insert En("Work-ability team")
* #sosiaalipalvelut "Sosiaalipalvelut"
* #sosiaalipalvelut insert En("Social services")
* #kela "Kela"
* #kela insert En("Kela - the Social Insurance Institution of Finland")
* #te-palvelut "TE-palvelut / työllisyyspalvelut"
* #te-palvelut insert En("Employment services")
* #typ "TYP"
* #typ insert En("Multi-sector joint service promoting employment (TYP\)")
* #erikoissairaanhoito "Erikoissairaanhoito"
* #erikoissairaanhoito insert En("Specialised health care")
* #mielenterveys-ja-paihdepalvelut "Mielenterveys- ja päihdepalvelut"
* #mielenterveys-ja-paihdepalvelut insert En("Mental health and substance abuse services")
* #vammaispalvelut "Vammaispalvelut"
* #vammaispalvelut insert En("Disability services")
* #tyotoimintakeskus "Työtoimintakeskus"
* #tyotoimintakeskus insert En("Work activity centre")
* #nuorten-palvelut "Nuorten palvelut"
* #nuorten-palvelut insert En("Youth services")
* #jarjesto "Järjestö / kolmas sektori"
* #jarjesto insert En("NGO / third sector")
* #oppilaitos "Oppilaitos"
* #oppilaitos insert En("Educational institution")

CodeSystem: ServiceKind
Id: service-kind
Title: "Palvelulajit (service kinds)"
Description: "What a network responsibility is about (ServiceRequest.code); the overlap check compares these."
* insert LocalCodeSystem
* #terveystarkastus "Työttömän terveystarkastus"
* #terveystarkastus insert En("Health check for the unemployed")
* #kuntoutusselvitys "Ammatillisen kuntoutuksen selvitys"
* #kuntoutusselvitys insert En("Vocational rehabilitation assessment")
* #tyokokeilu "Työkokeilu"
* #tyokokeilu insert En("Work trial")
* #vertaistuki "Vertaistuki ja kokemusasiantuntija"
* #vertaistuki insert En("Peer support and experience expert")
* #seuranta "Seuranta: palaamme suunnitelmaan"
* #seuranta insert En("Follow-up: we return to the plan")
* #kuntouttava-tyotoiminta "Kuntouttava työtoiminta"
* #kuntouttava-tyotoiminta insert En("Rehabilitative work activity")
* #tyokyvyn-arvio "Työkyvyn arvio"
* #tyokyvyn-arvio insert En("Work-ability assessment")
* #etuudet-selvitys "Myönnettyjen etuuksien selvitys"
* #etuudet-selvitys insert En("Review of the benefits granted")
* #typ-monialainen-suunnitelma "Monialainen työllistymissuunnitelma"
* #typ-monialainen-suunnitelma insert En("Multi-sector employment plan")
* #ammatinvalinnanohjaus "Ammatinvalinta- ja uraohjaus"
* #ammatinvalinnanohjaus insert En("Vocational and career guidance")
* #mielenterveyspalvelu "Mielenterveyspalvelu"
* #mielenterveyspalvelu insert En("Mental health service")
* #paihdepalvelu "Päihdepalvelu"
* #paihdepalvelu insert En("Substance abuse service")
* #vammaispalvelu "Vammaispalvelu"
* #vammaispalvelu insert En("Disability service")
* #ammatillinen-kuntoutus "Ammatillinen kuntoutus"
* #ammatillinen-kuntoutus insert En("Vocational rehabilitation")
* #kuntoutusraha "Kuntoutusraha"
* #kuntoutusraha insert En("Rehabilitation allowance")
* #tyottomyysetuus "Työttömyysetuus"
* #tyottomyysetuus insert En("Unemployment benefit")
* #opiskelu "Opiskelu"
* #opiskelu insert En("Studies")
* #valmennus "Valmennus"
* #valmennus insert En("Coaching")
* #palkkatuki "Palkkatuki"
* #palkkatuki insert En("Pay subsidy")
* #tyokyvyttomyyselake-selvitys "Työkyvyttömyyseläkkeen selvitys"
* #tyokyvyttomyyselake-selvitys insert En("Disability pension assessment")
* #sosiaalityo "Sosiaalityö"
* #sosiaalityo insert En("Social work")
* #sosiaaliohjaus "Sosiaaliohjaus"
* #sosiaaliohjaus insert En("Social guidance")

CodeSystem: HandoverReason
Id: handover-reason
Title: "Asiakasvastaavan vaihdon syyt (handover reasons)"
Description: "Why the named coordinator changes in an escorted handover (saattaen vaihtaen)."
* insert LocalCodeSystem
* #palvelu-vaihtuu "Palvelu vaihtuu"
* #palvelu-vaihtuu insert En("The client moves to another service")
* #tarve-muuttui "Tarve muuttui"
* #tarve-muuttui insert En("The client's need changed")
* #tyontekija-vaihtuu "Työntekijä vaihtuu"
* #tyontekija-vaihtuu insert En("The worker changes")
* #asiakkaan-toive "Asiakkaan toive"
* #asiakkaan-toive insert En("The client's wish")
* #sosiaalipalvelujen-asiakkuus "Sosiaalipalvelujen asiakkuus alkoi"
* #sosiaalipalvelujen-asiakkuus insert En("The client became a social-services client")
* #typ-asiakkuus "TYP-asiakkuus alkoi"
* #typ-asiakkuus insert En("The client became a TYP client")

CodeSystem: BusinessStatus
Id: business-status
Title: "Vastuun käsittelyvaihe (business status of a responsibility)"
Description: "Where a network responsibility stands, as the partners say it (Task.businessStatus)."
* insert LocalCodeSystem
* #lahetetty "Lähetetty"
* #lahetetty insert En("Sent")
* #vastaanotettu "Vastaanotettu"
* #vastaanotettu insert En("Received and accepted")
* #kaynnissa "Käynnissä"
* #kaynnissa insert En("In progress")
* #odottaa "Odottaa"
* #odottaa insert En("Waiting")
* #valmis "Valmis"
* #valmis insert En("Done")
* #hylatty "Hylätty"
* #hylatty insert En("Rejected")
* #peruttu "Peruttu"
* #peruttu insert En("Cancelled")

CodeSystem: PlanCategory
Id: plan-category
Title: "Suunnitelman laji (plan category)"
Description: "The kind of care plan (CarePlan.category)."
* insert LocalCodeSystem
* #asiakassuunnitelma "Asiakassuunnitelma"
* #asiakassuunnitelma insert En("Shared client plan")

CodeSystem: TaskType
Id: task-type
Title: "Koordinoinnin tehtävät (coordination task types)"
Description: "Task.code of the coordination tasks that are not a partner's responsibility."
* insert LocalCodeSystem
* #coordinator-handover "Asiakasvastaavan vaihto saattaen vaihtaen"
* #coordinator-handover insert En("Escorted handover of the client coordinator")
* #follow-up "Seuranta"
* #follow-up insert En("Follow-up")
* #bring-back "Palautus tiimiin"
* #bring-back insert En("Bring the case back to the team")

CodeSystem: LastingSolution
Id: lasting-solution
Title: "Pysyvä ratkaisu (lasting solution)"
Description: "Where the client's path led at the end of the period (final summary, client plan)."
* insert LocalCodeSystem
* #opiskelu "Opiskelu"
* #opiskelu insert En("Studies")
* #tyollistyminen "Työllistyminen"
* #tyollistyminen insert En("Employment")
* #palkkatuettu-tyo "Palkkatuettu työ"
* #palkkatuettu-tyo insert En("Subsidised employment")
* #kuntoutus "Kuntoutus"
* #kuntoutus insert En("Rehabilitation")
* #tyokyvyttomyyselake "Työkyvyttömyyseläke"
* #tyokyvyttomyyselake insert En("Disability pension")
* #osatyokyvyttomyyselake "Osatyökyvyttömyyseläke"
* #osatyokyvyttomyyselake insert En("Partial disability pension")
* #muu-palvelu "Muu palvelu"
* #muu-palvelu insert En("Another service")
* #ei-ratkaisua "Ei pysyvää ratkaisua"
* #ei-ratkaisua insert En("No lasting solution yet")

CodeSystem: SecurityLabel
Id: security-label
Title: "Suojausmerkinnät (security labels)"
Description: "Finnish security labels on meta.security; TURVAKIELTO keeps the client hidden from everyone but the custodians."
* insert LocalCodeSystem
* #turvakielto "Turvakielto"
* #turvakielto insert En("Non-disclosure order (TURVAKIELTO\)")

CodeSystem: DataOrigin
Id: data-origin
Title: "Tiedon alkuperä (data origin)"
Description: "Tags on meta.tag saying where a resource came from."
* insert LocalCodeSystem
* #sample "Esimerkkiaineisto"
* #sample insert En("Sample data")

CodeSystem: FeedbackStage
Id: feedback-stage
Title: "Palautteen vaihe (feedback stage)"
Description: "The stage of the client's path the client gives feedback on (Questionnaire stage-feedback)."
* insert LocalCodeSystem
* #suunnitelma "Suunnitelma sovittu"
* #suunnitelma insert En("Plan agreed")
* #verkostoneuvottelu "Verkostoneuvottelu"
* #verkostoneuvottelu insert En("Network meeting")
* #vaihto "Asiakasvastaavan vaihto"
* #vaihto insert En("Handover of the coordinator")
* #seuranta "Seuranta"
* #seuranta insert En("Follow-up")
* #loppuyhteenveto "Loppuyhteenveto"
* #loppuyhteenveto insert En("Final summary")

CodeSystem: PeerSupportAnswer
Id: peer-support-answer
Title: "Vertaistukitarjouksen vastaus (answer to the peer-support offer)"
Description: "The client's answer when peer support or an experience expert is offered."
* insert LocalCodeSystem
* #tarjottu "Tarjottu"
* #tarjottu insert En("Offered")
* #hyvaksytty "Hyväksytty"
* #hyvaksytty insert En("Accepted")
* #ei-nyt "Ei nyt"
* #ei-nyt insert En("Not now")
* #kieltaytyi "Kieltäytyi"
* #kieltaytyi insert En("Declined")

CodeSystem: SummarySection
Id: summary-section
Title: "Loppuyhteenvedon osiot (final summary sections)"
Description: "Sections of the final summary document (Composition.section.code)."
* insert LocalCodeSystem
* #tavoitteet "Tavoitteet"
* #tavoitteet insert En("Goals")
* #palvelut "Käytetyt palvelut"
* #palvelut insert En("Services used")
* #vastuut "Vastuut"
* #vastuut insert En("Responsibilities")
* #ratkaisu "Pysyvä ratkaisu"
* #ratkaisu insert En("Lasting solution")
* #asiakkaan-palaute "Asiakkaan palaute"
* #asiakkaan-palaute insert En("Client feedback")
