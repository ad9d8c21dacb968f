#!/usr/bin/env python3
"""Generates the matching benchmark's inputs, deterministically (fixed seed).

  gen_pack.py OUTDIR

writes
  OUTDIR/intents/*.yaml  a pack of 1,000 intents (50 permit topics x 20 kinds of
                         question), 2-5 patterns each, in the format of
                         docs/intents.md, with replies, examples, not_examples and the
                         required system messages, so `loket check OUTDIR/intents` can
                         load it;
  OUTDIR/patterns.txt    every pattern, one per line, in rank order (the pack sets
                         no priorities, so rank order is file order);
  OUTDIR/patterns-dotstar.txt  the same with every bounded gap .{0,N} written .*:
                         Hyperscan compiles it as one database in about a minute,
                         patterns.txt had not after 12 minutes (see README.md);
  OUTDIR/messages.txt    100,000 chat-like messages (about 60 bytes on average), about
                         a third about a permit topic, the rest small talk and
                         near misses.

Examples are kept only when the first intent (in rank order) whose pattern
matches them, with Python's re (caseless), is their own intent, so the pack's
examples reach their intents the way loket's checker demands.
"""
import os
import random
import re
import sys

SEED = 20240611
N_MESSAGES = 100_000

# ---- vocabulary: (name, id phrases, en phrases, id title, en title) ----
# A phrase is plain words; "word*" becomes word\w* (suffixes such as -nya).

TOPICS = [
    ("pbg", ["pbg", "imb", "persetujuan bangunan gedung", "izin mendirikan bangunan"],
     ["building approval", "building permit", "pbg"], "PBG", "Building approval"),
    ("slf", ["slf", "sertifikat laik fungsi"], ["certificate of occupancy", "slf"], "SLF", "Occupancy"),
    ("nib", ["nib", "nomor induk berusaha"], ["business id number", "nib"], "NIB", "Business ID"),
    ("siup", ["siup", "surat izin usaha perdagangan"], ["trading license", "trading licence", "siup"],
     "SIUP", "Trading license"),
    ("reklame", ["reklame", "baliho", "papan nama", "spanduk"], ["billboard*", "signboard*", "advertising permit"],
     "Reklame", "Billboards"),
    ("pkkpr", ["pkkpr", "kesesuaian ruang", "tata ruang"], ["spatial planning", "zoning"], "PKKPR", "Zoning"),
    ("amdal", ["amdal", "analisis dampak lingkungan"], ["environmental impact", "amdal"], "AMDAL", "EIA"),
    ("ukl_upl", ["ukl upl", "ukl-upl", "uklupl"], ["ukl upl", "environmental management plan"], "UKL-UPL", "UKL-UPL"),
    ("sppl", ["sppl", "surat pernyataan lingkungan"], ["sppl", "environmental statement"], "SPPL", "SPPL"),
    ("sip_dokter", ["sip dokter", "izin praktik dokter", "praktek dokter", "praktik dokter"],
     ["doctor permit", "doctor practice permit", "doctors license"], "SIP dokter", "Doctor permit"),
    ("sip_bidan", ["sip bidan", "izin praktik bidan", "praktik bidan", "bidan mandiri"],
     ["midwife permit", "midwife license", "midwifery"], "SIP bidan", "Midwife permit"),
    ("sip_perawat", ["sip perawat", "izin praktik perawat", "praktik perawat"],
     ["nurse permit", "nursing license", "nurse license"], "SIP perawat", "Nurse permit"),
    ("sip_apoteker", ["sip apoteker", "sipa apoteker", "praktik apoteker"],
     ["pharmacist permit", "pharmacist license"], "SIP apoteker", "Pharmacist"),
    ("sip_fisioterapis", ["fisioterapis", "praktik fisioterapi"], ["physiotherapist*", "physiotherapy"],
     "Fisioterapis", "Physiotherapist"),
    ("sip_drg", ["dokter gigi", "drg"], ["dentist*", "dental practice"], "Dokter gigi", "Dentist"),
    ("apotek", ["apotek", "apotik"], ["pharmacy", "pharmacies", "drugstore*"], "Apotek", "Pharmacy"),
    ("toko_obat", ["toko obat", "toko jamu"], ["medicine shop*", "herbal shop*"], "Toko obat", "Medicine shop"),
    ("klinik", ["klinik", "klinik pratama", "klinik utama"], ["clinic*"], "Klinik", "Clinic"),
    ("laboratorium", ["laboratorium", "lab klinik"], ["laborator*", "medical lab"], "Laboratorium", "Laboratory"),
    ("optik", ["optik", "optikal", "toko kacamata"], ["optician*", "optical shop*", "eyewear"], "Optik", "Optician"),
    ("hotel", ["hotel", "penginapan"], ["hotel*", "lodging"], "Hotel", "Hotel"),
    ("restoran", ["restoran", "rumah makan", "warung makan", "kafe"], ["restaurant*", "cafe*", "eatery"],
     "Restoran", "Restaurant"),
    ("villa", ["villa", "vila"], ["villa*"], "Villa", "Villa"),
    ("homestay", ["homestay", "pondok wisata"], ["homestay*", "guest house*", "guesthouse*"], "Homestay", "Homestay"),
    ("spa", ["spa", "panti pijat", "griya pijat"], ["spa", "massage parlor*", "massage parlour*"], "Spa", "Spa"),
    ("diving", ["diving", "wisata selam", "penyelaman"], ["diving", "scuba"], "Diving", "Diving"),
    ("rafting", ["rafting", "arung jeram"], ["rafting", "white water"], "Rafting", "Rafting"),
    ("izin_lokasi", ["izin lokasi", "ijin lokasi"], ["location permit*", "site permit*"], "Izin lokasi", "Location"),
    ("izin_gangguan", ["izin gangguan", "ijin gangguan", "izin ho"], ["nuisance permit*", "disturbance permit*"],
     "Izin gangguan", "Nuisance permit"),
    ("menara", ["menara telekomunikasi", "tower bts", "menara bts"], ["telecom tower*", "cell tower*", "bts tower*"],
     "Menara", "Telecom tower"),
    ("penelitian", ["izin penelitian", "surat penelitian", "izin riset"], ["research permit*", "research license"],
     "Penelitian", "Research"),
    ("trayek", ["trayek", "izin angkutan", "angkutan umum"], ["route permit*", "public transport*"],
     "Trayek", "Route permit"),
    ("perikanan", ["usaha perikanan", "tambak", "budidaya ikan"], ["fishery", "fisheries", "fish farm*"],
     "Perikanan", "Fisheries"),
    ("tambang", ["tambang", "galian c", "pertambangan"], ["mining", "quarry", "quarries"], "Tambang", "Mining"),
    ("paud", ["paud", "taman kanak", "izin tk"], ["kindergarten*", "preschool*"], "PAUD", "Preschool"),
    ("kursus", ["lembaga kursus", "bimbel", "tempat kursus"], ["tutoring", "course provider*"], "Kursus", "Courses"),
    ("lpk", ["lpk", "lembaga pelatihan"], ["training cent*", "training institute*"], "LPK", "Training centre"),
    ("sekolah", ["sekolah swasta", "yayasan pendidikan"], ["private school*", "education foundation*"],
     "Sekolah", "Private school"),
    ("koperasi", ["koperasi", "kopdit"], ["cooperative*", "credit union*"], "Koperasi", "Cooperative"),
    ("minimarket", ["minimarket", "toko swalayan", "toko modern"], ["minimarket*", "convenience store*"],
     "Minimarket", "Minimarket"),
    ("mall", ["pusat perbelanjaan", "mall", "mal"], ["shopping cent*", "shopping mall*"], "Mall", "Shopping mall"),
    ("gudang", ["gudang", "tdg", "tanda daftar gudang"], ["warehouse*", "storage building*"], "Gudang", "Warehouse"),
    ("industri", ["izin industri", "iui", "usaha industri"], ["industrial permit*", "factory permit*"],
     "Industri", "Industry"),
    ("sumur", ["sumur bor", "air tanah", "sipa air"], ["groundwater", "bore well*", "borehole*"], "Air tanah",
     "Groundwater"),
    ("parkir", ["lahan parkir", "izin parkir", "juru parkir"], ["parking lot*", "parking permit*"], "Parkir",
     "Parking"),
    ("keramaian", ["izin keramaian", "izin acara", "izin event"], ["event permit*", "crowd permit*"],
     "Keramaian", "Event permit"),
    ("salon", ["salon", "barbershop", "pangkas rambut"], ["salon*", "barber*", "hairdresser*"], "Salon", "Salon"),
    ("bengkel", ["bengkel", "cuci motor", "cuci mobil"], ["repair shop*", "car wash*", "garage"], "Bengkel",
     "Workshop"),
    ("spbu", ["spbu", "pertashop", "pom bensin"], ["gas station*", "petrol station*", "fuel station*"], "SPBU",
     "Fuel station"),
    ("pirt", ["pirt", "p-irt", "industri rumah tangga"], ["home food industry", "home industry", "food permit*"],
     "PIRT", "Home food"),
]

ASPECTS = [
    ("syarat", ["syarat*", "persyaratan", "dokumen*", "berkas*"], ["requirement*", "documents", "what do i need"],
     "Syarat", "Requirements"),
    ("biaya", ["biaya*", "tarif*", "bayar*", "retribusi", "harga*"], ["cost*", "fee*", "price*", "how much"],
     "Biaya", "Fees"),
    ("lama", ["berapa lama", "berapa hari", "lama proses*", "kapan jadi", "durasi"],
     ["how long", "processing time", "how many days"], "Lama proses", "Processing time"),
    ("status", ["status*", "sampai mana", "progres*", "sudah jadi"], ["status", "progress", "track*"],
     "Status", "Status"),
    ("formulir", ["formulir*", "form", "blanko", "template"], ["form", "forms", "template*"], "Formulir", "Forms"),
    ("cara", ["cara*", "bagaimana", "gimana", "gmn", "prosedur*", "alur*", "langkah*"],
     ["how to", "how do i", "how can i", "procedure*", "steps"], "Cara", "How to"),
    ("perpanjang", ["perpanjang*", "diperpanjang", "sudah habis", "udah habis"], ["renew*", "extend*", "extension"],
     "Perpanjangan", "Renewal"),
    ("hilang", ["hilang", "rusak", "duplikat", "salinan"], ["lost", "damaged", "duplicate*", "replacement"],
     "Hilang", "Lost"),
    ("ubah", ["ubah", "perubahan", "revisi", "ganti nama", "koreksi"], ["change*", "revis*", "amend*", "correction"],
     "Perubahan", "Changes"),
    ("cabut", ["cabut", "pencabutan", "tutup usaha", "berhenti usaha"], ["revok*", "cancel*", "withdraw*"],
     "Pencabutan", "Revocation"),
    ("online", ["online", "daring", "lewat oss", "via oss", "lewat web"], ["online", "website", "internet"],
     "Online", "Online"),
    ("berlaku", ["masa berlaku", "berlaku berapa", "kadaluarsa", "kedaluwarsa"], ["valid for", "validity", "expiry"],
     "Masa berlaku", "Validity"),
    ("contoh", ["contoh*", "sampel", "format"], ["example*", "sample*"], "Contoh", "Examples"),
    ("survei", ["survei", "verifikasi lapangan", "cek lokasi", "peninjauan"], ["inspection*", "site visit*", "survey"],
     "Survei", "Inspection"),
    ("ditolak", ["ditolak", "penolakan", "tidak disetujui", "gagal"], ["reject*", "denied", "refused", "failed"],
     "Ditolak", "Rejected"),
    ("ambil", ["ambil", "pengambilan", "dikirim", "terbit*"], ["pick up", "pickup", "collect*", "issued"],
     "Pengambilan", "Collection"),
    ("ttd", ["tanda tangan", "ttd", "tte", "stempel"], ["signature*", "signed", "stamp*"], "Tanda tangan",
     "Signature"),
    ("konsultasi", ["konsultasi", "tanya jawab", "asistensi"], ["consult*", "advice", "assistance"], "Konsultasi",
     "Consultation"),
    ("keluhan", ["keluhan", "komplain", "pengaduan", "lambat"], ["complain*", "complaint", "too slow"], "Keluhan",
     "Complaints"),
    ("denda", ["denda", "sanksi", "terlambat", "telat"], ["fine", "fines", "penalt*", "sanction*"], "Denda",
     "Penalties"),
]

ID_PREFIX = ["", "", "min ", "kak ", "mau tanya ", "permisi, ", "pak, ", "bu ", "halo min ", "maaf mau tanya ",
             "selamat pagi, ", "om swastyastu, "]
ID_SUFFIX = ["", "", "?", " ya", " apa aja ya", " gimana ya", " min", " kak", " dong", " tolong infonya",
             " untuk usaha saya", " di tabanan", "??", " makasih"]
EN_PREFIX = ["", "", "hi, ", "hello, ", "excuse me, ", "good morning, ", "quick question: "]
EN_SUFFIX = ["", "", "?", " please", " in tabanan", " for my business", " thanks"]

SMALL_TALK = [
    "selamat pagi", "selamat siang kak", "halo", "halo min", "ok", "oke siap", "baik terima kasih", "makasih ya min",
    "siap pak", "mohon ditunggu", "sudah saya kirim", "sebentar ya", "iya betul", "tidak jadi", "sama sama",
    "nanti saya kabari lagi", "baik bu, saya tunggu kabarnya", "wah cepat sekali, terima kasih banyak",
    "maaf salah kirim", "hehe", "mantap", "sip", "good morning", "thank you so much", "ok noted", "see you",
    "saya sudah di depan", "nomor saya ganti yang ini", "foto ktp sudah saya lampirkan", "mohon dibantu ya",
    "sudah saya transfer tadi pagi", "apakah bisa diwakilkan oleh keluarga saya", "anak saya yang akan datang",
    "saya di denpasar sekarang", "rumah saya di kediri", "alamatnya jalan gunung agung no 5", "besok saya ke sana",
    "kapan bisa ketemu", "terima kasih atas bantuannya", "nggak apa apa", "sampai jumpa",
    "boleh minta nomor wa bapaknya", "sinyal di sini jelek", "maaf baru balas", "ini dengan siapa ya",
    "saya mau tanya soal rumah", "saya warga baru di sini", "tadi sudah telepon tapi tidak diangkat",
    "apakah ini nomor resmi", "kok belum dibalas", "P", "p", "tes", "test 123", "assalamualaikum", "shalom",
    "om santi santi santi om", "rahajeng semeng", "suksma", "nggih", "inggih pak",
]
FRAGMENTS = [
    "saya mau tanya", "untuk rumah saya di kediri", "kemarin sudah datang ke kantor", "tapi belum ada kabar",
    "mohon infonya ya", "terima kasih sebelumnya", "maaf mengganggu", "apakah bisa dibantu",
    "berkas sudah saya upload minggu lalu", "nomor pendaftaran saya 0412/2024", "atas nama i made sudarsana",
    "usaha saya di desa marga", "rencananya bulan depan", "soalnya saya kerja di luar kota",
    "kata petugas di desa suruh tanya ke sini", "saya bingung caranya", "sudah dua minggu menunggu",
    "apa bisa lewat email saja", "nanti saya kirim fotonya", "maaf baru sempat balas", "tolong dibalas ya kak",
    "saya tunggu kabar baiknya", "kira kira bisa selesai kapan", "bapak saya yang punya tanah",
    "i am a foreigner living in tabanan", "my english is not so good", "i sent an email yesterday",
    "please reply when you can", "is this the right number", "i will come tomorrow morning",
]
FILLER = ["saya", "mau", "tanya", "untuk", "yang", "dan", "di", "ke", "dari", "sudah", "belum", "bisa", "tidak",
          "apakah", "kemarin", "besok", "hari", "ini", "itu", "rumah", "kantor", "usaha", "keluarga", "anak",
          "bapak", "ibu", "desa", "banjar", "kecamatan", "tabanan", "kediri", "marga", "baturiti", "penebel",
          "ya", "kak", "min", "tolong", "mohon", "info", "nya", "dong", "deh", "sih", "kok", "lagi", "juga",
          "the", "my", "is", "for", "and", "please", "thanks", "when", "where", "can", "we"]


def phrase_regex(p):
    words = p.split(" ")
    out = []
    for w in words:
        star = w.endswith("*")
        w = w.rstrip("*")
        r = re.escape(w).replace("\\-", "-")
        if "-" in w:
            r = r.replace("-", "[\\s-]*")
        out.append(r + ("\\w*" if star else ""))
    return "\\s+".join(out)


def phrase_sample(p, rnd, lang="id"):
    words = []
    for w in p.split(" "):
        if w.endswith("*"):
            w = w[:-1] + rnd.choice(["", "", "nya"] if lang == "id" else ["", "", "s"])
        words.append(w)
    return " ".join(words)


def alt(phrases):
    return "(" + "|".join(phrase_regex(p) for p in phrases) + ")"


def intent_patterns(topic, aspect, rnd):
    """2-5 patterns for one (aspect, topic) intent: each requires an aspect word and
    a topic word, in the style of the shipped pack."""
    tid, ten = alt(topic[1]), alt(topic[2])
    aid, aen = alt(aspect[1]), alt(aspect[2])
    gap = rnd.choice(["{0,30}", "{0,40}", "{0,50}"])
    cands = [
        ("id", "\\b" + aid + "\\b." + gap + "\\b" + tid + "\\b"),
        ("en", "\\b" + aen + "\\b." + gap + "\\b" + ten + "\\b"),
        ("id", "\\b" + tid + "\\b.{0,30}\\b" + aid + "\\b"),
        ("en", "\\b" + ten + "\\b.{0,30}\\b" + aen + "\\b"),
        ("id", "\\b" + aid + "(nya)?\\s+(izin\\s+|ijin\\s+|untuk\\s+|buat\\s+)?" + tid + "\\b"),
    ]
    k = rnd.randint(2, 5)
    return cands[:k]


def make_example(topic, aspect, lang, rnd):
    if lang == "id":
        a = phrase_sample(rnd.choice(aspect[1]), rnd)
        t = phrase_sample(rnd.choice(topic[1]), rnd)
        core = rnd.choice([a + " " + t, a + " izin " + t, t + " " + a, a + " untuk " + t])
        return rnd.choice(ID_PREFIX) + core + rnd.choice(ID_SUFFIX)
    a = phrase_sample(rnd.choice(aspect[2]), rnd, "en")
    t = phrase_sample(rnd.choice(topic[2]), rnd, "en")
    core = rnd.choice([a + " " + t, a + " for a " + t, a + " for the " + t, t + " " + a])
    return rnd.choice(EN_PREFIX) + core + rnd.choice(EN_SUFFIX)


def yq(s):
    """A YAML single-quoted scalar: a backslash stays as it is, ' doubles."""
    return "'" + s.replace("'", "''") + "'"


class Pack:
    def __init__(self):
        self.intents = []  # dicts with name, topic, aspect, patterns [(lang, re)], compiled

    def first_intent(self, text, cands):
        """Index of the first intent (rank order) among cands matching text, or -1."""
        for i in sorted(cands):
            for rx in self.intents[i]["compiled"]:
                if rx.search(text):
                    return i
        return -1


def lower_words(phrases):
    return [re.split(r"[ -]", p.replace("*", ""))[0].lower() for p in phrases]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_pack.py OUTDIR")
    outdir = sys.argv[1]
    rnd = random.Random(SEED)
    pack = Pack()
    order = [(t, a) for t in TOPICS for a in ASPECTS]
    for topic, aspect in order:
        pats = intent_patterns(topic, aspect, rnd)
        pack.intents.append({
            "name": aspect[0] + "_" + topic[0], "topic": topic, "aspect": aspect, "patterns": pats,
            "compiled": [re.compile(p, re.IGNORECASE) for _, p in pats],
        })

    # Which intents can match a text: every pattern needs one aspect word and one
    # topic word (their first word, as a substring), so only those are tried.
    topic_keys = {t[0]: lower_words(t[1] + t[2]) for t in TOPICS}
    aspect_keys = {a[0]: lower_words(a[1] + a[2]) for a in ASPECTS}

    def candidates(text):
        low = text.lower()
        ts = {k for k, ws in topic_keys.items() if any(w in low for w in ws)}
        as_ = {k for k, ws in aspect_keys.items() if any(w in low for w in ws)}
        return [i for i, it in enumerate(pack.intents) if it["topic"][0] in ts and it["aspect"][0] in as_]

    for i, it in enumerate(pack.intents):
        ex, tries = [], 0
        while len(ex) < 6 and tries < 400:
            tries += 1
            lang = "id" if tries % 3 else "en"
            if lang == "en" and not any(l == "en" for l, _ in it["patterns"]):
                lang = "id"
            msg = make_example(it["topic"], it["aspect"], lang, rnd)
            if msg not in ex and pack.first_intent(msg, candidates(msg)) == i:
                ex.append(msg)
        if len(ex) < 5:
            sys.exit("gen_pack: intent %s: only %d examples reach it" % (it["name"], len(ex)))
        it["examples"] = ex
        # not_examples: the same topic asked about another aspect that no
        # pattern of this intent matches, and small talk
        nots = []
        for a in rnd.sample(ASPECTS, len(ASPECTS)):
            if a is it["aspect"]:
                continue
            msg = make_example(it["topic"], a, "id", rnd)
            if not any(rx.search(msg) for rx in it["compiled"]):
                nots.append(msg)
            if len(nots) == 2:
                break
        nots.append(rnd.choice(SMALL_TALK))
        it["not_examples"] = nots

    os.makedirs(os.path.join(outdir, "intents"), exist_ok=True)
    for f in os.listdir(os.path.join(outdir, "intents")):
        if f.endswith(".yaml"):
            os.remove(os.path.join(outdir, "intents", f))
    with open(os.path.join(outdir, "intents", "00-messages.yaml"), "w") as f:
        f.write("# Generated by bench/gen_pack.py: the system messages of the benchmark pack.\n")
        first_names = [pack.intents[i]["name"] for i in range(0, 200, 20)]
        for name, rid, ren, buttons in [
            ("fallback", "Maaf, saya belum mengerti. Silakan pilih salah satu topik.",
             "Sorry, I did not understand. Please choose a topic.", first_names),
            ("did_you_mean", "Apakah maksud Anda salah satu topik ini?", "Did you mean one of these topics?", None),
            ("escalated", "Percakapan ini kami teruskan ke petugas {office.name}.",
             "We passed this conversation to the staff of {office.name}.", None),
            ("text_only", "Maaf, saya hanya bisa membaca pesan teks.", "Sorry, I can only read text.", None),
        ]:
            f.write("\n- message: %s\n  reply:\n    id: %s\n    en: %s\n" % (name, yq(rid), yq(ren)))
            if buttons:
                f.write("  buttons: [%s]\n" % ", ".join(buttons))
    for ti, topic in enumerate(TOPICS):
        path = os.path.join(outdir, "intents", "%02d-%s.yaml" % (10 + ti, topic[0].replace("_", "-")))
        with open(path, "w") as f:
            f.write("# Generated by bench/gen_pack.py: questions about %s.\n" % topic[3])
            for it in pack.intents:
                if it["topic"] is not topic:
                    continue
                a = it["aspect"]
                f.write("\n- intent: %s\n" % it["name"])
                f.write("  title:\n    id: %s\n    en: %s\n" % (yq((a[3] + " " + topic[3])[:20]),
                                                           yq((a[4] + " " + topic[4])[:20])))
                f.write("  match:\n")
                for lang in ("id", "en"):
                    ps = [p for l, p in it["patterns"] if l == lang]
                    if ps:
                        f.write("    %s:\n" % lang)
                        for p in ps:
                            f.write("      - %s\n" % yq(p))
                f.write("  examples:\n")
                for e in it["examples"]:
                    f.write("    - %s\n" % yq(e))
                f.write("  not_examples:\n")
                for e in it["not_examples"]:
                    f.write("    - %s\n" % yq(e))
                f.write("  reply:\n")
                f.write("    id: |\n      %s untuk %s: silakan lihat {office.forms_url} atau hubungi "
                        "{office.phone}.\n" % (a[3], topic[3]))
                f.write("    en: |\n      %s for %s: see {office.forms_url} or call {office.phone}.\n"
                        % (a[4], topic[4]))

    with open(os.path.join(outdir, "patterns.txt"), "w") as f, \
            open(os.path.join(outdir, "patterns-dotstar.txt"), "w") as g:
        for it in pack.intents:
            for _, p in it["patterns"]:
                f.write(p + "\n")
                g.write(re.sub(r"\.\{0,\d+\}", ".*", p) + "\n")

    # ---- the message mix ----
    msgs = []
    while len(msgs) < N_MESSAGES:
        r = rnd.random()
        if r < 0.33:
            t, a = rnd.choice(TOPICS), rnd.choice(ASPECTS)
            m = make_example(t, a, "id" if rnd.random() < 0.75 else "en", rnd)
            if rnd.random() < 0.6:
                m = rnd.choice(FRAGMENTS) + ", " + m
            if rnd.random() < 0.3:
                m += ", " + rnd.choice(FRAGMENTS)
        elif r < 0.55:
            # near misses: a topic or an aspect word alone, inside chat
            words = [rnd.choice(FILLER) for _ in range(rnd.randint(5, 12))]
            src = rnd.choice(TOPICS) if rnd.random() < 0.5 else rnd.choice(ASPECTS)
            words.insert(rnd.randrange(len(words) + 1), phrase_sample(rnd.choice(src[1]), rnd))
            m = " ".join(words)
        elif r < 0.80:
            m = rnd.choice(SMALL_TALK)
            if rnd.random() < 0.7:
                m += ", " + ", ".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 3)))
        else:
            m = ", ".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 4)))
        if rnd.random() < 0.15:
            m = m.capitalize()
        elif rnd.random() < 0.03:
            m = m.upper()
        msgs.append(m)
    with open(os.path.join(outdir, "messages.txt"), "w") as f:
        for m in msgs:
            f.write(m + "\n")
    avg = sum(len(m) for m in msgs) / len(msgs)
    print("gen_pack: %d intents, %d patterns, %d messages (%.1f bytes average) in %s"
          % (len(pack.intents), sum(len(i["patterns"]) for i in pack.intents), len(msgs), avg, outdir))


if __name__ == "__main__":
    main()
