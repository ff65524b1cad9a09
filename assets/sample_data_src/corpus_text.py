"""Templates for the clean part of the corpus: titles, personal openings, descriptive
("colour") sentences that are not quiz facts, feelings, closings, how-to procedures and the
material for the mixed Japanese/English documents."""

from __future__ import annotations

# group -> titles / personal openings / descriptive sentences (JA markup) and English ones.
GROUPS = {
    # ---------------------------------------------------------------- geo
    "mountains": {
        "topic": "geo",
        "slug": "fuji",
        "title": [
            "富士山",
            "富士山について",
            "日本一の山、富士山",
            "富士山と日本の高い山",
            "富士山のこと",
        ],
        "open": [
            "先日、友人と富士山の五合目まで車で行ってき{ました|た}。",
            "今年の夏、ついに念願の富士登山に挑戦し{た}。",
            "新幹線の窓から見えた富士山があまりにきれいで、思わず写真を{撮りました|撮った}。",
            "子どものころから、冬の晴れた朝に見える富士山が好き{だ}。",
            "山登りを始めて三年目、そろそろ日本の高い山にも登ってみたくなって{きた}。",
        ],
        "color": [
            "山頂付近は夏でも気温が低く、防寒具が{欠かせません|欠かせない}。",
            "晴れた日には、東京都心の高いビルからも富士山の姿を望むことが{できる}。",
            "五合目から上は空気が薄くなるため、ゆっくりしたペースで登るのが安全{だ}。",
            "富士山は古くから信仰の対象とされ、多くの絵画や和歌の題材になって{きた}。",
            "葛飾北斎の『富嶽三十六景』には、さまざまな場所から見た富士山が描かれて{いる}。",
            "冬になると山頂付近は雪に覆われ、よく知られた白い姿に{なる}。",
            "ご来光を見るために、夜のうちに山小屋を出発する登山者も多{い}。",
        ],
        "title_en": ["Mount Fuji", "About Mount Fuji", "Japan's highest mountains"],
        "open_en": [
            "Last summer I finally climbed Mount Fuji.",
            "I saw Mount Fuji from the shinkansen window last week, and it was stunning.",
        ],
        "color_en": [
            "It is cold near the summit even in summer, so warm clothes are a must.",
            "On clear days you can see Mount Fuji from tall buildings in central Tokyo.",
            "Many climbers leave their mountain hut at night to watch the sunrise from the top.",
            "Hokusai's Thirty-six Views of Mount Fuji shows the mountain from many places.",
        ],
    },
    "water": {
        "topic": "geo",
        "slug": "lakes-rivers",
        "title": [
            "琵琶湖と日本の湖",
            "日本の川と湖",
            "琵琶湖のこと",
            "信濃川と利根川",
            "湖と川の話",
        ],
        "open": [
            "週末に滋賀県まで足をのばして、琵琶湖のほとりを自転車で{走りました|走った}。",
            "先日、新潟で信濃川の河口近くを散歩し{た}。",
            "小学生のころ、社会の授業で日本の長い川を覚えたのを{思い出しました|思い出した}。",
        ],
        "color": [
            "琵琶湖は、京都や大阪など近畿地方の暮らしを支える大切な水源になって{いる}。",
            "琵琶湖の周りを自転車で一周することは「ビワイチ」と呼ばれ、サイクリストに人気が{ある}。",
            "信濃川の下流には越後平野が広がり、米どころとして知られて{いる}。",
            "川の長さや湖の広さを比べてみると、日本の地形の特徴が見えてきて面白{い}。",
            "大きな川の流域では、昔から水害と向き合いながら治水の工夫が重ねられて{きた}。",
        ],
        "title_en": ["Lakes and rivers of Japan", "Lake Biwa"],
        "open_en": ["Last weekend I cycled along the shore of Lake Biwa."],
        "color_en": [
            "Lake Biwa is an important source of water for Kyoto, Osaka and the rest of the "
            "Kinki region.",
            "Cycling all the way around Lake Biwa is popular and has its own nickname, Biwaichi.",
            "The Echigo Plain along the lower Shinano River is famous for its rice.",
        ],
    },
    "prefs": {
        "topic": "geo",
        "slug": "prefectures",
        "title": ["都道府県の広さ", "北海道と香川県", "日本の都道府県", "都道府県の面積ランキング"],
        "open": [
            "北海道を車で旅したとき、移動距離の長さに{驚きました|驚いた}。",
            "香川県に行ったら、うどんを一日三食食べようと決めて{いた}。",
        ],
        "color": [
            "北海道は広いので、札幌から函館まで移動するだけでも数時間{かかります|かかる}。",
            "香川県は面積こそ小さいものの、ため池の多さでも知られて{いる}。",
            "日本には1都1道2府43県、合わせて47の都道府県が{ある}。",
            "面積の順位を見ると、北海道の次には岩手県、福島県、長野県が{続きます|続く}。",
        ],
        "title_en": ["Japan's prefectures by area"],
        "open_en": ["On my road trip around Hokkaido I was amazed at the distances."],
        "color_en": [
            "Japan has 47 prefectures in total.",
            "After Hokkaido, the largest prefectures are Iwate, Fukushima and Nagano.",
        ],
    },
    "sankei": {
        "topic": "geo",
        "slug": "nihon-sankei",
        "title": ["日本三景をめぐる", "宮島と厳島神社", "日本三景", "天橋立と松島"],
        "open": [
            "念願だった宮島を訪れ、海に立つ大鳥居を見て{きた}。",
            "この夏は、日本三景を一つずつ回る旅を計画して{いる}。",
            "松島の遊覧船に乗って、大小さまざまな島を{眺めました|眺めた}。",
        ],
        "color": [
            "満潮のときの大鳥居は海に浮かんでいるように見え、干潮のときは近くまで歩いて{行けます|行ける}。",
            "天橋立は、海の上に細長く砂州がのびる珍しい地形{だ}。",
            "天橋立では、股の間から景色を逆さまにのぞく「股のぞき」が名物になって{いる}。",
            "松島湾には、260ほどの島々が浮かんで{いる}。",
            "宮島では、鹿が参道をのんびり歩いている姿をよく{見かけます|見かける}。",
        ],
        "title_en": ["The Three Views of Japan", "Miyajima"],
        "open_en": ["I finally visited Miyajima and saw the great torii gate in the sea."],
        "color_en": [
            "At high tide the torii seems to float on the water; at low tide you can walk up "
            "to it.",
            "Amanohashidate is a long, narrow sandbar stretching across the bay.",
            "About 260 islands dot Matsushima Bay.",
        ],
    },
    "kyushu": {
        "topic": "geo",
        "slug": "kyushu",
        "title": ["九州の自然", "屋久島と縄文杉", "桜島と阿蘇山", "九州の火山と島"],
        "open": [
            "去年の秋、屋久島で縄文杉を見に行くトレッキングに参加し{た}。",
            "鹿児島に住む友人によると、桜島の灰が降る日は洗濯物を外に干せないそう{だ}。",
            "熊本に出張したついでに、阿蘇の草千里まで足をのばし{た}。",
        ],
        "color": [
            "縄文杉までの往復には10時間ほどかかるため、朝早くに出発するのが一般的{だ}。",
            "屋久島は雨が多いことでも知られ、「ひと月に35日雨が降る」と言われるほど{だ}。",
            "桜島へは、鹿児島市街からフェリーで15分ほどで渡ることが{できる}。",
            "阿蘇のカルデラの中には町や田畑が広がり、多くの人が暮らして{いる}。",
            "火山の多い九州には、各地に温泉が湧いて{いる}。",
        ],
        "title_en": ["Nature in Kyushu", "Yakushima and Sakurajima"],
        "open_en": ["Last autumn I joined a trek on Yakushima to see the Jomon Sugi."],
        "color_en": [
            "The round trip to the Jomon Sugi takes about ten hours, so hikers start early.",
            "You can reach Sakurajima from central Kagoshima in about fifteen minutes by ferry.",
            "Towns and farms lie inside the huge Aso caldera.",
        ],
    },
    "cities": {
        "topic": "geo",
        "slug": "sightseeing",
        "title": ["東京スカイツリー", "東京と京都の名所", "金閣寺と京都", "スカイツリーに上る"],
        "open": [
            "休日に、東京スカイツリーの展望台に{上りました|上った}。",
            "修学旅行で訪れて以来、久しぶりに金閣寺を見に{行きました|行った}。",
        ],
        "color": [
            "スカイツリーの展望デッキからは、天気がよければ遠くに富士山が見えることも{ある}。",
            "金閣寺の舎利殿は金箔に覆われ、池の水面に映る姿が美し{い}。",
            "金閣寺の舎利殿は1950年の放火で焼失し、その後再建さ{れた}。",
            "東京スカイツリーは、東京都墨田区に{ある}。",
            "京都には、世界遺産「古都京都の文化財」に含まれる寺社が数多く{ある}。",
        ],
        "title_en": ["Tokyo Skytree", "Kinkaku-ji"],
        "open_en": ["On my day off I went up to the observation deck of Tokyo Skytree."],
        "color_en": [
            "On a clear day you can sometimes see Mount Fuji from the Skytree deck.",
            "The gold-leafed pavilion of Kinkaku-ji is reflected beautifully in its pond.",
        ],
    },
    # ---------------------------------------------------------------- food
    "dashi": {
        "topic": "food",
        "slug": "dashi",
        "title": ["出汁の基本", "うま味と出汁", "昆布とかつお節の話", "だしをとってみよう"],
        "open": [
            "最近、顆粒だしをやめて、昆布とかつお節で出汁をとるように{なった}。",
            "料理教室で、出汁の飲み比べをする機会が{あった}。",
            "実家の母が毎朝出汁をとっていた理由が、自分で料理をするようになってやっと{分かりました|分かった}。",
        ],
        "color": [
            "昆布は水から入れて、沸騰する直前に取り出すと雑味が出にく{い}。",
            "かつお節は、沸いたお湯に入れて火を止め、沈んだらこすのが一般的な方法{だ}。",
            "煮干しは頭とはらわたを取ってから使うと、苦みの少ない出汁に{なる}。",
            "出汁をしっかりきかせると、塩分を控えめにしてもおいしく感じら{れる}。",
            "干ししいたけの戻し汁にもうま味があり、煮物などに使わ{れる}。",
        ],
        "title_en": ["Dashi basics", "Umami and dashi"],
        "open_en": ["Recently I stopped using instant dashi and started making my own."],
        "color_en": [
            "Put the kombu in cold water and take it out just before the water boils.",
            "A good dashi lets you use less salt without losing flavor.",
            "The water used to soak dried shiitake is also full of umami.",
        ],
    },
    "miso": {
        "topic": "food",
        "slug": "miso",
        "title": ["味噌汁の話", "毎日の味噌汁", "味噌のいろいろ", "味噌汁のコツ"],
        "open": [
            "朝ごはんには、どんなに忙しくても味噌汁だけは作るようにして{いる}。",
            "旅先で飲んだ赤だしの味噌汁がおいしくて、家でも真似して{みた}。",
        ],
        "color": [
            "具は豆腐とわかめの組み合わせが{定番ですが|定番だが}、季節の野菜を入れるのも楽し{い}。",
            "赤だしは、豆味噌を使った味噌汁のことを指す場合が多{い}。",
            "九州では、麦味噌がよく使わ{れる}。",
            "味噌は冷蔵庫で保存すると、風味が長持ち{する}。",
            "二種類の味噌を混ぜて「合わせ味噌」にすると、味に深みが{出ます|出る}。",
        ],
        "title_en": ["Miso soup every day", "Kinds of miso"],
        "open_en": ["However busy I am, I always make miso soup for breakfast."],
        "color_en": [
            "Tofu and wakame are the classic fillings, but seasonal vegetables are fun too.",
            "Barley miso is popular in Kyushu.",
        ],
    },
    "dishes": {
        "topic": "food",
        "slug": "washoku",
        "title": ["寿司と天ぷら", "和食の定番料理", "天ぷらを揚げる", "寿司の話"],
        "open": [
            "先日、カウンターのお寿司屋さんで初めておまかせを頼んで{みた}。",
            "休日の昼に、家族で天ぷらを{揚げました|揚げた}。",
        ],
        "color": [
            "握り寿司は、江戸の屋台で手早く食べられる料理として人気を集めたといわれて{いる}。",
            "天ぷらの揚げ油は、170〜180℃くらいが目安とされて{いる}。",
            "衣は混ぜすぎると粘りが出てしまうので、さっくり混ぜるのがポイント{だ}。",
            "寿司に添えられるガリは、しょうがの甘酢漬け{だ}。",
            "エビやキス、季節の野菜など、天ぷらの具は工夫しだいでいろいろ{楽しめます|楽しめる}。",
        ],
        "title_en": ["Sushi and tempura"],
        "open_en": ["Last weekend my family made tempura at home."],
        "color_en": [
            "Nigiri sushi is said to have started as quick food sold at stalls in Edo.",
            "Frying oil for tempura is usually heated to about 170 to 180°C.",
            "The pickled ginger served with sushi is called gari.",
        ],
    },
    "preserved": {
        "topic": "food",
        "slug": "natto-umeboshi",
        "title": ["納豆と梅干し", "発酵食品の話", "ご飯のおとも", "梅干しを漬ける"],
        "open": [
            "毎朝の納豆ごはんが、もう何年も続いて{いる}。",
            "祖母に教わって、今年初めて梅干しを漬けて{みた}。",
        ],
        "color": [
            "納豆はよくかき混ぜると糸が増え、口当たりがまろやかに{なる}。",
            "梅干しは、6月ごろに出回る熟した梅を使って漬けることが多{い}。",
            "梅干しを漬けたあとに残る梅酢も、料理に使うことが{できる}。",
            "和歌山県の南高梅は、皮がやわらかく果肉の厚い品種として人気が{ある}。",
            "発酵食品は保存がきくため、冷蔵庫のない時代から暮らしを支えて{きた}。",
        ],
        "title_en": ["Natto and umeboshi"],
        "open_en": ["My grandmother taught me how to make umeboshi this year."],
        "color_en": [
            "Stirring natto well makes more of its sticky threads and a milder texture.",
            "Nanko ume from Wakayama are popular for their soft skin and thick flesh.",
        ],
    },
    "noodles": {
        "topic": "food",
        "slug": "udon-soba",
        "title": ["うどんとそば", "讃岐うどんめぐり", "年越しそばの話", "麺の話"],
        "open": [
            "高松に旅行して、二日間で五軒のうどん店を{回りました|回った}。",
            "今年の大晦日は、初めてそばを手打ちして{みた}。",
        ],
        "color": [
            "讃岐うどんは、強いコシのある麺が特徴{だ}。",
            "セルフ式のうどん店では、天ぷらなどのトッピングを自分で{選べます|選べる}。",
            "そば粉だけで打ったそばは「十割そば」、そば粉8割に小麦粉2割のものは「二八そば」と呼ば{れる}。",
            "温かいかけそばにも、冷たいざるそばにも、それぞれのおいしさが{ある}。",
        ],
        "title_en": ["Udon and soba"],
        "open_en": ["In Takamatsu I visited five udon shops in two days."],
        "color_en": [
            "Sanuki udon is known for its firm, chewy noodles.",
            "Soba made only from buckwheat flour is called juwari soba.",
        ],
    },
    "newyear": {
        "topic": "food",
        "slug": "oshogatsu",
        "title": ["お正月の料理", "お雑煮と地域の味", "和食と無形文化遺産", "おせちの意味"],
        "open": [
            "結婚して初めてのお正月、夫の実家のお雑煮が丸餅で{驚きました|驚いた}。",
            "年末に、初めて自分でおせちを何品か作って{みた}。",
        ],
        "color": [
            "お雑煮の汁はすまし汁の地域もあれば白味噌仕立ての地域もあり、家庭ごとに味が{違います|違う}。",
            "おせち料理は重箱に詰めて、「めでたさを重ねる」という意味を込めることが{ある}。",
            "和食の特徴として、季節の移ろいを料理や器で表すことがよく挙げら{れる}。",
            "日持ちするおせち料理には、正月三が日に台所に立つ手間を減らすという意味も{ある}。",
        ],
        "title_en": ["New Year food"],
        "open_en": ["This year I made a few osechi dishes myself for the first time."],
        "color_en": [
            "Osechi is packed in stacked boxes, a wish for happiness piled on happiness.",
            "Washoku is known for showing the change of the seasons in food and tableware.",
        ],
    },
    # ---------------------------------------------------------------- tea
    "kinds": {
        "topic": "tea",
        "slug": "tea-types",
        "title": [
            "緑茶・紅茶・ウーロン茶の違い",
            "日本茶の種類",
            "ほうじ茶が好き",
            "お茶の基礎知識",
        ],
        "open": [
            "最近、コーヒーの代わりに日本茶を飲むように{なった}。",
            "近所のお茶屋さんで、いろいろな日本茶を試飲させて{もらいました|もらった}。",
        ],
        "color": [
            "番茶は、新芽を摘んだあとの大きめの葉などで作る、普段使いのお茶{だ}。",
            "玄米茶は炒った玄米を緑茶に混ぜたお茶で、香ばしい香りが{楽しめます|楽しめる}。",
            "緑茶には、カテキンやカフェインが含まれて{いる}。",
            "ほうじ茶は夕食後にも飲みやすく、ほっと一息つきたいときにぴったり{だ}。",
        ],
        "title_en": ["Kinds of Japanese tea", "Green, black and oolong tea"],
        "open_en": ["Lately I have been drinking Japanese tea instead of coffee."],
        "color_en": [
            "Genmaicha is green tea mixed with roasted brown rice.",
            "Bancha is an everyday tea made from larger, later leaves.",
        ],
    },
    "brewing": {
        "topic": "tea",
        "slug": "brewing",
        "title": ["おいしいお茶の淹れ方", "急須で淹れる煎茶", "玉露をじっくり味わう"],
        "open": [
            "在宅勤務になってから、急須でお茶を淹れるのが毎日の楽しみに{なった}。",
            "いただきものの玉露を、説明書きどおりにていねいに淹れて{みた}。",
        ],
        "color": [
            "沸かしたお湯を一度湯のみに移すと、温度が下がってちょうどよい加減に{なる}。",
            "二煎目は、一煎目より少し熱めのお湯で短めに淹れるとおいし{い}。",
            "茶葉の量は、一人分でティースプーン山盛り1杯が目安{だ}。",
            "最後の一滴までしっかり注ぎ切ると、二煎目もおいしく淹れら{れる}。",
        ],
        "title_en": ["How to brew Japanese tea"],
        "open_en": ["Since I started working from home, making tea in a kyusu is my daily treat."],
        "color_en": [
            "Pouring boiled water into the cups first cools it to a good temperature.",
            "Pour out every last drop so that the second infusion is good too.",
        ],
    },
    "matcha": {
        "topic": "tea",
        "slug": "matcha",
        "title": ["抹茶を点ててみた", "抹茶の基本", "茶筅の使い方", "はじめての抹茶"],
        "open": [
            "茶道教室の体験レッスンで、初めて自分で抹茶を点て{た}。",
            "抹茶ラテにはまってから、本物の抹茶にも興味がわいて{きた}。",
        ],
        "color": [
            "抹茶はダマになりやすいので、茶こしでふるってから使うとなめらかに{仕上がります|仕上がる}。",
            "茶筅は手首を前後に動かしてすばやく振ると、きめ細かい泡が立ちやす{い}。",
            "濃茶と薄茶では、抹茶とお湯の割合が大きく{違います|違う}。",
            "抹茶は光や湿気を避けて密閉して保存し、早めに使い切るのがよ{い}。",
        ],
        "title_en": ["Making matcha", "Matcha basics"],
        "open_en": ["At a trial tea ceremony class I whisked my own bowl of matcha."],
        "color_en": [
            "Sift matcha through a tea strainer first so it does not form lumps.",
            "Move the whisk quickly back and forth from the wrist to make fine foam.",
        ],
    },
    "history": {
        "topic": "tea",
        "slug": "tea-history",
        "title": ["日本のお茶の歴史", "千利休と茶の湯", "栄西とお茶"],
        "open": ["歴史の本を読んでいたら日本のお茶の始まりが気になって、少し調べて{みた}。"],
        "color": [
            "お茶は奈良時代から平安時代にかけて、遣唐使などによって日本に伝えられたと考えられて{いる}。",
            "茶道では、客をもてなす亭主の心づかいが何より大切にされて{いる}。",
            "わび茶は、簡素で静かなものの中に美しさを見いだそうと{します|する}。",
            "江戸時代になると、庶民の間でも煎茶を飲む習慣が広まって{いきました|いった}。",
        ],
        "title_en": ["A short history of tea in Japan"],
        "open_en": ["I read a little about how tea came to Japan."],
        "color_en": [
            "Tea is thought to have reached Japan between the Nara and Heian periods.",
            "In the tea ceremony, the host's care for the guests matters most.",
        ],
    },
    "regions": {
        "topic": "tea",
        "slug": "tea-regions",
        "title": ["お茶の産地めぐり", "宇治と静岡", "八十八夜と新茶", "新茶の季節"],
        "open": [
            "新茶の季節に、静岡の茶畑を見学するツアーに参加し{た}。",
            "京都の宇治を訪れ、平等院を見たあとでお茶屋さんを何軒も{回りました|回った}。",
        ],
        "color": [
            "新茶は香りがさわやかで、その年の最初に摘まれたお茶として喜ばれて{いる}。",
            "茶畑に立つ扇風機のような機械は「防霜ファン」といい、霜の害から新芽を守って{いる}。",
            "鹿児島県や三重県も、全国有数のお茶の産地{だ}。",
            "埼玉県の狭山茶は、「色は静岡、香りは宇治よ、味は狭山でとどめさす」と歌われて{きた}。",
        ],
        "title_en": ["Tea regions of Japan", "New tea season"],
        "open_en": ["During the new tea season I joined a tour of the tea fields in Shizuoka."],
        "color_en": [
            "The fans standing in tea fields protect the new shoots from frost.",
            "Kagoshima and Mie are also major tea-growing prefectures.",
        ],
    },
    # ---------------------------------------------------------------- season
    "rainy": {
        "topic": "season",
        "slug": "tsuyu",
        "title": ["梅雨のこと", "梅雨の過ごし方", "雨の季節", "梅雨入りと梅雨明け"],
        "open": [
            "今年も梅雨入りが発表され、洗濯物が乾かない日々が{始まりました|始まった}。",
            "雨の日が続くと気分が{沈みがちですが|沈みがちだが}、アジサイを見に出かけるのは好き{だ}。",
        ],
        "color": [
            "梅雨の時期は湿度が高く、食べ物にカビが生えやすいので注意が必要{だ}。",
            "梅雨の終わりごろには、大雨が降りやすくなることが{ある}。",
            "梅雨が明けると、いよいよ本格的な夏が{やってきます|やってくる}。",
            "部屋干しのときは、除湿機や扇風機で風を当てると乾きやす{い}。",
        ],
        "title_en": ["The rainy season"],
        "open_en": ["The rainy season has started again, and my laundry never dries."],
        "color_en": [
            "Food goes moldy easily in the humid rainy season.",
            "Heavy rain often falls toward the end of the rainy season.",
        ],
    },
    "spring": {
        "topic": "season",
        "slug": "sakura",
        "title": ["桜前線がやってきた", "桜の季節", "お花見と開花の発表", "春と花粉"],
        "open": [
            "毎年この時期は、ニュースで桜の開花予想をチェックするのが楽しみ{だ}。",
            "今年は近所の公園で、満開の桜の下でお花見をし{た}。",
        ],
        "color": [
            "ソメイヨシノは葉が出る前に花が咲くので、木全体が花に包まれたように{見えます|見える}。",
            "開花から満開までは、1週間ほどかかることが多{い}。",
            "北海道では、5月ごろになってようやく桜が見ごろを迎えることも{ある}。",
            "桜の花が散ると、すぐに若葉の季節が{やってきます|やってくる}。",
        ],
        "title_en": ["Cherry blossom season"],
        "open_en": ["This year we had a picnic under the cherry trees in the local park."],
        "color_en": [
            "Somei-yoshino flowers open before the leaves, so the whole tree looks covered in "
            "blossom.",
            "In Hokkaido the cherry trees often bloom as late as May.",
        ],
    },
    "summer_autumn": {
        "topic": "season",
        "slug": "summer-autumn",
        "title": ["台風に備える", "紅葉狩りの季節", "お月見と秋の行事", "夏から秋へ"],
        "open": [
            "今年の秋は、家族で紅葉狩りに出かけ{た}。",
            "台風が近づくというニュースを見て、ベランダの植木鉢を片づけ{た}。",
            "十五夜の晩、ベランダにすすきを飾って月を{眺めました|眺めた}。",
        ],
        "color": [
            "台風の接近が予想されるときは、懐中電灯や飲み水を早めに用意しておくと安心{だ}。",
            "紅葉の見ごろは、地域や標高によって大きく{異なります|異なる}。",
            "イチョウは黄色に、カエデは赤に色づくものが多{い}。",
            "夏の夜には、各地で花火大会が開か{れる}。",
            "秋の夜長には、虫の声を聞きながら本を読むのもよ{い}。",
        ],
        "title_en": ["Typhoons and autumn leaves"],
        "open_en": ["This autumn my family went out to see the autumn leaves."],
        "color_en": [
            "When a typhoon is coming, prepare a flashlight and drinking water early.",
            "Ginkgo trees turn yellow, while many maples turn red.",
        ],
    },
    "calendar": {
        "topic": "season",
        "slug": "koyomi",
        "title": ["二十四節気と季節の行事", "冬至とゆず湯", "節分と立春", "暦の上の季節"],
        "open": [
            "冬至の日、スーパーにゆずが並んでいるのを見て、久しぶりにゆず湯に{しました|した}。",
            "節分の夜、子どもと一緒に豆まきをし{た}。",
        ],
        "color": [
            "二十四節気は、一年を24に分けて季節の目安とした暦の考え方{だ}。",
            "節分には、その年の恵方を向いて恵方巻きを食べる習慣も広まって{いる}。",
            "春分の日と秋分の日は、昼と夜の長さがほぼ同じに{なる}。",
            "暦の上では春でも、立春のころはまだ一年で最も寒い時期{だ}。",
        ],
        "title_en": ["Seasonal days on the calendar"],
        "open_en": ["On Setsubun night I threw beans with my kids."],
        "color_en": [
            "The 24 solar terms divide the year into 24 parts as a guide to the seasons.",
            "Around the spring and autumn equinoxes, day and night are about the same length.",
        ],
    },
    # ---------------------------------------------------------------- rail
    "rail_history": {
        "topic": "rail",
        "slug": "rail-history",
        "title": ["日本の鉄道の歩み", "鉄道の日", "国鉄からJRへ"],
        "open": [
            "鉄道博物館に行って、日本の鉄道の歴史を展示で{学びました|学んだ}。",
            "10月14日の鉄道の日に合わせて、駅でイベントが開かれて{いた}。",
        ],
        "color": [
            "日本最初の鉄道では、イギリスから輸入した蒸気機関車が使わ{れた}。",
            "旧新橋停車場の駅舎は当時の姿で再現され、汐留で公開されて{いる}。",
            "JRは、JR北海道、JR東日本、JR東海、JR西日本、JR四国、JR九州、JR貨物などに分かれて{いる}。",
            "鉄道の日の前後には、各地で車両基地の見学会などが開かれることが{ある}。",
        ],
        "title_en": ["A short history of Japanese railways"],
        "open_en": ["I visited a railway museum and learned about the history of trains."],
        "color_en": [
            "Japan's first trains were pulled by steam locomotives imported from Britain.",
            "The JR group includes JR East, JR Central, JR West and several other companies.",
        ],
    },
    "shinkansen": {
        "topic": "rail",
        "slug": "shinkansen",
        "title": ["新幹線の話", "東海道新幹線に乗って", "新幹線の列車名", "はやぶさとのぞみ"],
        "open": [
            "出張で、久しぶりに東海道新幹線に{乗りました|乗った}。",
            "子どもが新幹線に夢中で、週末は駅のホームで車両を眺めて過ごすことが多{い}。",
        ],
        "color": [
            "東海道新幹線で東京から新大阪へ向かうとき、富士山が見えるのは進行方向の右側{だ}。",
            "新幹線の座席は回転させて、向かい合わせにすることが{できる}。",
            "新幹線の先頭車両が長い鼻のような形をしているのは、トンネルに入るときの騒音や空気抵抗を減らすため{だ}。",
            "駅弁を選ぶのも、新幹線の旅の楽しみの一つ{だ}。",
        ],
        "title_en": ["Riding the shinkansen"],
        "open_en": ["I took the Tokaido Shinkansen for a business trip last week."],
        "color_en": [
            "Going from Tokyo to Shin-Osaka, Mount Fuji appears on the right side of the train.",
            "Shinkansen seats can be turned around so a group can sit facing each other.",
            "Picking an ekiben, a station lunch box, is part of the fun of the trip.",
        ],
    },
    "tokyo_rail": {
        "topic": "rail",
        "slug": "yamanote",
        "title": ["山手線の話", "東京駅と山手線", "Suicaと東京の電車", "山手線一周"],
        "open": [
            "東京に引っ越してきて、最初に覚えたのが山手線の駅名{だった}。",
            "休日に、山手線を一周してみようと{思い立ちました|思い立った}。",
        ],
        "color": [
            "山手線の車両は、黄緑色のラインが目印{だ}。",
            "東京駅の丸の内駅舎は、建築家の辰野金吾が設計し{た}。",
            "山手線の外回りは時計回り、内回りは反時計回りに走って{いる}。",
            "ICカードを使えば、切符を買わずに改札を通ることが{できる}。",
        ],
        "title_en": ["The Yamanote Line", "Tokyo Station"],
        "open_en": ["On a day off I rode the Yamanote Line all the way around."],
        "color_en": [
            "Yamanote Line trains are marked with a yellow-green stripe.",
            "With an IC card you can pass the ticket gates without buying a ticket.",
        ],
    },
    "seikan": {
        "topic": "rail",
        "slug": "seikan",
        "title": ["青函トンネル", "北海道新幹線と青函トンネル", "海の下を走る鉄道"],
        "open": ["北海道新幹線で函館に向かう途中、青函トンネルを{通りました|通った}。"],
        "color": [
            "青函トンネルの海底部分は、約23キロメートルに{およびます|およぶ}。",
            "青函トンネルの工事は、出水などの困難を乗り越えながら長い年月をかけて進めら{れた}。",
            "トンネルができる前は、青函連絡船が本州と北海道を結んで{いた}。",
            "青函トンネルは、開業当時は世界で最も長い鉄道トンネル{だった}。",
        ],
        "title_en": ["The Seikan Tunnel"],
        "open_en": ["On the way to Hakodate by shinkansen, we passed through the Seikan Tunnel."],
        "color_en": [
            "Before the tunnel, ferries carried passengers between Honshu and Hokkaido.",
            "When it opened, the Seikan Tunnel was the longest railway tunnel in the world.",
        ],
    },
    # ---------------------------------------------------------------- pets
    "cats": {
        "topic": "pets",
        "slug": "neko",
        "title": [
            "猫との暮らし",
            "うちの猫の観察日記",
            "猫の習性",
            "猫のひげと爪",
            "猫はなぜよく寝るのか",
        ],
        "open": [
            "保護猫を迎えて、もうすぐ一年に{なる}。",
            "うちの猫は、今日も日当たりのいい窓辺で一日中寝て{いた}。",
            "猫を飼い始めてから、家具の配置を何度も{変えました|変えた}。",
            "実家の猫が、気がつけば15歳に{なりました|なった}。",
        ],
        "color": [
            "猫が目を細めてゆっくりまばたきするのは、リラックスしているサインといわれて{いる}。",
            "爪とぎ器を置いておくと、家具で爪をとぐのを減らせることが{ある}。",
            "猫は高いところが好きなので、キャットタワーを置くと喜ぶことが多{い}。",
            "猫は、季節に合わせて家の中で居心地のよい場所を見つけるのが上手{だ}。",
            "年に一度は動物病院で健康診断を受けさせると安心{だ}。",
        ],
        "title_en": ["Living with a cat", "Why cats sleep so much"],
        "open_en": [
            "It is almost a year since we adopted a rescue cat.",
            "Our cat spent the whole day asleep by the sunny window again.",
        ],
        "color_en": [
            "A slow blink from a cat is said to be a sign that it feels relaxed.",
            "A scratching post can keep a cat from scratching the furniture.",
            "Cats love high places, so a cat tower usually makes them happy.",
        ],
    },
    "food_safety": {
        "topic": "pets",
        "slug": "pet-food",
        "title": ["ペットに与えてはいけない食べ物", "猫のごはんの注意点", "犬や猫の食事"],
        "open": ["夕食の準備中、猫が台所で玉ねぎのにおいをかいでいて、ひやりとし{た}。"],
        "color": [
            "ぶどうやレーズンも、犬にとって危険な食べ物として知られて{いる}。",
            "ペットフードは、年齢や体調に合わせて選ぶことが大切{だ}。",
            "人間用の味の濃い食べ物は、ペットの体に負担をかけやす{い}。",
            "新鮮な水をいつでも飲めるようにしておくことも大切{だ}。",
        ],
        "title_en": ["Foods pets must not eat"],
        "open_en": ["While I was cooking dinner, my cat sniffed at an onion and gave me a scare."],
        "color_en": [
            "Grapes and raisins are also known to be dangerous for dogs.",
            "Always keep fresh water where your pet can reach it.",
        ],
    },
    "pet_days": {
        "topic": "pets",
        "slug": "neko-no-hi",
        "title": ["猫の日と犬の日", "2月22日は猫の日"],
        "open": ["2月22日の猫の日に、いつもより少し高いおやつを{買いました|買った}。"],
        "color": [
            "猫の日は、1987年に制定さ{れた}。",
            "猫の日には、飼い猫の写真をSNSに投稿する人も多{い}。",
            "犬の日の11月1日には、ペットショップなどでキャンペーンが行われることも{ある}。",
        ],
        "title_en": ["Cat Day and Dog Day"],
        "open_en": ["For Cat Day I bought my cat a slightly fancier treat."],
        "color_en": ["Cat Day in Japan was established in 1987."],
    },
    "dogs": {
        "topic": "pets",
        "slug": "inu",
        "title": ["犬の散歩と健康", "犬を飼うときの決まり", "狂犬病の予防注射"],
        "open": [
            "毎朝、柴犬と近所の川沿いを散歩するのが日課{だ}。",
            "子犬を迎えたので、役所で犬の登録を{済ませました|済ませた}。",
        ],
        "color": [
            "犬を飼い始めたら、市区町村に登録することも法律で決められて{いる}。",
            "散歩は、犬にとって運動になるだけでなく気分転換にも{なる}。",
            "散歩のときは、ふんを持ち帰るための袋や水を持って出かけるのがマナー{だ}。",
        ],
        "title_en": ["Walking the dog"],
        "open_en": ["Every morning I walk our Shiba along the river."],
        "color_en": [
            "Dog owners in Japan must also register their dog with the local government.",
            "Take bags to pick up after your dog and some water on every walk.",
        ],
    },
    "fish": {
        "topic": "pets",
        "slug": "kingyo",
        "title": ["金魚の飼い方", "金魚のふしぎ"],
        "open": ["夏祭りの金魚すくいでもらった金魚が、もう三年も元気に泳いで{いる}。"],
        "color": [
            "金魚の水槽の水は、一度に全部替えずに一部ずつ替えるのがよいとされて{いる}。",
            "えさをやりすぎると水が汚れやすいので、金魚のえさは控えめにするのが基本{だ}。",
            "水道水を使うときは、カルキを抜いてから水槽に{入れます|入れる}。",
            "愛知県の弥富市や奈良県の大和郡山市は、金魚の産地として知られて{いる}。",
        ],
        "title_en": ["Keeping goldfish"],
        "open_en": ["The goldfish I won at a summer festival is still swimming three years later."],
        "color_en": [
            "Change only part of the water in a goldfish tank at a time.",
            "Overfeeding makes the water dirty quickly.",
        ],
    },
    # ---------------------------------------------------------------- garden
    "veg": {
        "topic": "garden",
        "slug": "kitchen-garden",
        "title": ["ベランダ菜園のすすめ", "ミニトマトを育てる", "ハーブを育てる", "家庭菜園の基本"],
        "open": [
            "今年は、ベランダのプランターでミニトマトを育てて{いる}。",
            "庭の片隅に小さな畑を作って、三年目に{なる}。",
            "スーパーで買ったバジルの苗を植えたら、驚くほど大きく{育ちました|育った}。",
        ],
        "color": [
            "ミニトマトは、わき芽をこまめに摘み取ると実に栄養が回りやす{い}。",
            "実が赤く色づいたものから、順番に収穫していくとよ{い}。",
            "プランターで育てるなら、深さのある大きめのものを選ぶと根が張りやす{い}。",
            "ハーブは料理に少し使うだけでも、香りがぐっと{引き立ちます|引き立つ}。",
            "青じそは、こぼれた種から翌年も芽を出すことが{ある}。",
        ],
        "title_en": ["Growing vegetables on the balcony", "Growing cherry tomatoes"],
        "open_en": ["This year I am growing cherry tomatoes in a planter on my balcony."],
        "color_en": [
            "Pinch off the side shoots of tomato plants while they are small.",
            "A deep, large planter gives roots room to grow.",
            "Even a few fresh herbs make a dish smell wonderful.",
        ],
    },
    "care": {
        "topic": "garden",
        "slug": "watering",
        "title": ["水やりと土の基本", "鉢植えの育て方", "園芸の土の話"],
        "open": [
            "植物を枯らしてばかりだった私が、水やりのコツを知ってから失敗が{減りました|減った}。",
            "園芸店の店員さんに、土の選び方を詳しく教えて{もらいました|もらった}。",
        ],
        "color": [
            "受け皿にたまった水をそのままにしておくと、根腐れの原因になることが{ある}。",
            "市販の培養土には肥料などがはじめから配合されていて、手軽に{使えます|使える}。",
            "鉢の底に鉢底石を敷くと、水はけがよく{なる}。",
            "肥料は多すぎても植物を傷めるので、表示された量を守ることが大切{だ}。",
        ],
        "title_en": ["Watering and soil basics"],
        "open_en": ["I used to kill every plant until I learned how to water properly."],
        "color_en": [
            "Water left standing in the saucer can cause root rot.",
            "Too much fertilizer can harm plants, so follow the amount on the label.",
        ],
    },
    "flowers": {
        "topic": "garden",
        "slug": "flowers",
        "title": [
            "季節の花を育てる",
            "アサガオの観察",
            "アジサイの色のふしぎ",
            "チューリップの球根",
        ],
        "open": [
            "小学生の娘が、学校で育てたアサガオの鉢を持ち帰って{きた}。",
            "庭のアジサイが、今年はなぜか青からピンクに変わって{いた}。",
        ],
        "color": [
            "アサガオのつるは、支柱を立てておくと巻きつきながら上へ伸びて{いく}。",
            "ヒマワリは、つぼみのころに太陽の方向を向く性質で知られて{いる}。",
            "チューリップの球根は、とがったほうを上にして{植えます|植える}。",
            "花が終わったら、しおれた花を早めに摘み取ると株が疲れにく{い}。",
        ],
        "title_en": ["Seasonal flowers", "Why hydrangeas change color"],
        "open_en": ["My daughter brought home the morning glory she grew at school."],
        "color_en": [
            "Give morning glories a pole and the vines will wind their way up.",
            "Plant tulip bulbs with the pointed end up.",
        ],
    },
    # ---------------------------------------------------------------- pc
    "python": {
        "topic": "pc",
        "slug": "python",
        "title": ["Python入門メモ", "Pythonを始めよう", "はじめてのPython", "Pythonの基本"],
        "open": [
            "仕事の集計作業を自動化したくて、Pythonの勉強を始め{た}。",
            "週末に、Pythonで簡単なスクリプトを書いて{みた}。",
            "プログラミングは{未経験ですが|未経験だが}、Pythonなら読みやすいと聞いて挑戦して{いる}。",
        ],
        "color": [
            "Pythonは文法がシンプルで読みやすいため、最初に学ぶ言語として選ばれることが多{い}。",
            "Pythonは、データ分析や機械学習、Webアプリの開発など幅広い分野で使われて{いる}。",
            "エラーが出たときは、メッセージの最後の行を読むと原因の手がかりが見つかりやす{い}。",
            "変数には中身が分かる名前を付けておくと、あとで読み返すときに{困りません|困らない}。",
            "ちょっとしたコードを試すなら、対話モードで一行ずつ結果を確かめら{れる}。",
        ],
        "title_en": ["Python notes", "Getting started with Python"],
        "open_en": ["I started learning Python to automate some boring work tasks."],
        "color_en": [
            "Python's simple syntax makes it a popular first language.",
            "When you get an error, read the last line of the message first.",
            "Python is used for data analysis, machine learning, web apps and much more.",
        ],
    },
    "git": {
        "topic": "pc",
        "slug": "git",
        "title": ["Gitの基本コマンド", "Git入門", "はじめてのGit", "Gitでバージョン管理"],
        "open": [
            "チーム開発に参加することになり、あわててGitの使い方を{覚えました|覚えた}。",
            "卒論のファイルを「最終版」「最終版2」と増やすのをやめて、Gitで管理することに{した}。",
        ],
        "color": [
            "コミットメッセージには、何を変更したのかを短く具体的に書くとよ{い}。",
            "Gitを使えば以前の状態にいつでも戻せるので、安心して作業{できる}。",
            "ブランチを作ると、本流に影響を与えずに新しい機能を試すことが{できる}。",
            "GitHubなどのサービスを使うと、リポジトリをインターネット上で共有{できる}。",
        ],
        "title_en": ["Git basics", "My first steps with Git"],
        "open_en": ["I had to learn Git in a hurry when I joined a team project."],
        "color_en": [
            "Write commit messages that say briefly and clearly what changed.",
            "Branches let you try new ideas without touching the main line of work.",
        ],
    },
    "basics": {
        "topic": "pc",
        "slug": "pc-basics",
        "title": [
            "パソコンの基礎知識",
            "バックアップのすすめ",
            "パスワード管理のコツ",
            "パソコンの部品の話",
        ],
        "open": [
            "先日パソコンが突然起動しなくなり、バックアップの大切さを{思い知りました|思い知った}。",
            "家族のパソコンの設定を手伝うことになり、基本をおさらいし{た}。",
        ],
        "color": [
            "メモリの容量が大きいほど、たくさんのアプリを同時に動かしやすく{なる}。",
            "ストレージはデータを長く保存しておく場所で、HDDやSSDがこれに{あたります|あたる}。",
            "OSやアプリは、こまめに更新して最新の状態にしておくことが大切{だ}。",
            "パスワード管理アプリを使うと、長く複雑なパスワードも覚えずに{済みます|済む}。",
        ],
        "title_en": ["Computer basics", "Why you need backups"],
        "open_en": ["My laptop suddenly refused to start, and I learned the value of backups."],
        "color_en": [
            "Storage such as an HDD or SSD keeps data for the long term.",
            "Keep your operating system and apps up to date.",
        ],
    },
    # ---------------------------------------------------------------- astro
    "moon": {
        "topic": "astro",
        "slug": "moon",
        "title": ["月のふしぎ", "月の満ち欠け", "お月さまの話", "月までの距離"],
        "open": [
            "仕事帰りに見上げた満月が、驚くほど{明るかったです|明るかった}。",
            "双眼鏡で初めて月のクレーターを見て、思わず声が{出ました|出た}。",
        ],
        "color": [
            "月の表面の黒っぽい部分は「海」と呼ばれるが、実際に水があるわけでは{ない}。",
            "日本では、月の模様を餅をつくウサギに見立てる言い伝えが{ある}。",
            "満月の夜は、月明かりのせいで暗い星が見えにくく{なる}。",
            "月は自ら光っているのではなく、太陽の光を反射して輝いて{いる}。",
        ],
        "title_en": ["The Moon", "Phases of the Moon"],
        "open_en": ["The full moon on my way home from work was amazingly bright."],
        "color_en": [
            "The Moon does not shine by itself; it reflects sunlight.",
            "In Japan, the shapes on the Moon are said to look like a rabbit pounding rice cakes.",
        ],
    },
    "planets": {
        "topic": "astro",
        "slug": "planets",
        "title": ["太陽系の惑星", "惑星の覚え方", "水金地火木土天海", "太陽と惑星の話"],
        "open": [
            "子どもに太陽系の惑星を聞かれて、「水金地火木土天海」という覚え方を教え{た}。",
            "科学館のプラネタリウムで、惑星の解説を聞いて{きた}。",
        ],
        "color": [
            "惑星の並び順は、「すいきんちかもくどってんかい」と唱えて覚えるのが定番{だ}。",
            "太陽は太陽系の中心にある恒星で、自ら光と熱を出して{いる}。",
            "天王星と海王星は遠いため、肉眼ではほとんど{見えません|見えない}。",
            "木星の表面には、大赤斑と呼ばれる巨大な渦が見ら{れる}。",
            "惑星は星座の星とは違い、夜ごとに少しずつ位置を変えて{いく}。",
        ],
        "title_en": ["The planets of the solar system", "The Sun and its planets"],
        "open_en": ["I heard a great talk about the planets at the planetarium."],
        "color_en": [
            "The Sun is a star at the center of the solar system and makes its own light.",
            "Jupiter has a giant storm called the Great Red Spot.",
            "Uranus and Neptune are so far away that they are hard to see with the naked eye.",
        ],
    },
    "stars": {
        "topic": "astro",
        "slug": "hoshizora",
        "title": ["星空観察のすすめ", "流星群を見よう", "北極星とすばる", "冬の星座"],
        "open": [
            "夏休みに家族でキャンプに行き、満天の星を{眺めました|眺めた}。",
            "ペルセウス座流星群の夜、ベランダで一時間ほど空を見上げて{いた}。",
        ],
        "color": [
            "流星群を見るときは、街明かりの少ない場所で空を広く見渡すのがコツ{だ}。",
            "暗さに目が慣れるまでには、15分ほどかかるといわれて{いる}。",
            "冬はオリオン座など明るい星が多く、初心者でも星座を見つけやす{い}。",
            "双眼鏡があると、すばるの星々がいっそう美しく{見えます|見える}。",
        ],
        "title_en": ["Stargazing", "Watching meteor showers"],
        "open_en": ["On the night of the Perseids I watched the sky from my balcony for an hour."],
        "color_en": [
            "Find a place away from city lights and look at as much of the sky as you can.",
            "It takes about fifteen minutes for your eyes to get used to the dark.",
            "Winter brings bright stars such as those of Orion.",
        ],
    },
    # ---------------------------------------------------------------- craft
    "washi": {
        "topic": "craft",
        "slug": "washi",
        "title": ["和紙の魅力", "和紙ができるまで", "紙すき体験", "和紙の話"],
        "open": [
            "旅先の工房で、紙すきを体験させて{もらいました|もらった}。",
            "和紙の便せんで、久しぶりに手紙を書いて{みた}。",
        ],
        "color": [
            "和紙は繊維が長いため、薄くても破れにくいのが特徴{だ}。",
            "障子やふすまなど、和紙は昔から日本の住まいに使われて{きた}。",
            "紙すきでは、簀桁（すけた）という道具を揺らして繊維を均一に{絡ませます|絡ませる}。",
            "和紙は、美術品の修復にも使われて{いる}。",
        ],
        "title_en": ["Washi paper"],
        "open_en": ["At a workshop on my trip, I tried making paper by hand."],
        "color_en": [
            "Washi fibers are long, so even thin sheets are hard to tear.",
            "Washi is also used to restore works of art.",
        ],
    },
    "urushi": {
        "topic": "craft",
        "slug": "urushi",
        "title": ["漆器と金継ぎ", "漆のある暮らし", "輪島塗の話", "金継ぎに挑戦"],
        "open": [
            "お気に入りの茶碗を割ってしまい、金継ぎ教室に通い始め{た}。",
            "結婚祝いにいただいた漆のお椀を、毎日の味噌汁に使って{いる}。",
        ],
        "color": [
            "漆は、湿度の高い環境でゆっくり固まるという少し変わった性質を持って{いる}。",
            "漆器は使ったあとにぬるま湯でやさしく洗い、すぐに水気をふき取るとよ{い}。",
            "漆は肌に触れるとかぶれることがあるので、扱うときは注意が必要{だ}。",
            "金継ぎには、壊れた跡をあえて見せて器の新しい景色として楽しむという考え方も{ある}。",
        ],
        "title_en": ["Lacquerware and kintsugi"],
        "open_en": ["I broke my favorite bowl and started going to a kintsugi class."],
        "color_en": [
            "Urushi hardens slowly in a warm, humid place.",
            "Wash lacquerware gently in lukewarm water and dry it right away.",
        ],
    },
    "pottery": {
        "topic": "craft",
        "slug": "yakimono",
        "title": ["日本の焼き物めぐり", "やきものの産地", "陶器と磁器の違い", "有田焼と備前焼"],
        "open": [
            "陶器市に出かけて、気に入った湯のみを三つも買って{しまいました|しまった}。",
            "陶芸教室で、初めて電動ろくろに挑戦し{た}。",
        ],
        "color": [
            "陶器は粘土を主な原料とし、磁器は陶石を砕いた粉を主な原料と{します|する}。",
            "磁器は陶器よりも高い温度で焼かれ、たたくと澄んだ高い音が{する}。",
            "同じ窯で焼いても、火の当たり方によって一つひとつ表情が変わるのが焼き物の面白さ{だ}。",
            "九谷焼（石川県）や益子焼（栃木県）など、日本には各地に個性豊かな焼き物が{ある}。",
        ],
        "title_en": ["Japanese pottery"],
        "open_en": ["I went to a pottery fair and bought three teacups."],
        "color_en": [
            "Earthenware is made mostly of clay, while porcelain is made from crushed porcelain "
            "stone.",
            "Porcelain is fired hotter than earthenware and rings clearly when tapped.",
        ],
    },
    "crafts_other": {
        "topic": "craft",
        "slug": "kogei",
        "title": ["南部鉄器と江戸切子", "日本の伝統工芸品", "こけしの話", "西陣織を見に行く"],
        "open": [
            "南部鉄器の鉄瓶でお湯を沸かすようになって、お茶の時間がいっそう楽しく{なった}。",
            "京都の西陣を歩いて、機織りの音が聞こえる町並みを{楽しみました|楽しんだ}。",
            "東北の温泉地で、職人さんがこけしに絵付けをする様子を見学し{た}。",
        ],
        "color": [
            "鉄瓶は使い終わったら中の湯を捨て、余熱で乾かすとさびにくく{なる}。",
            "江戸切子のグラスは、光が当たると刻まれた模様がきらきらと{輝きます|輝く}。",
            "伝統的工芸品には、経済産業大臣が指定する制度が{ある}。",
            "こけしは産地ごとに顔つきや模様が異なり、系統によって分類されて{いる}。",
        ],
        "title_en": ["Traditional crafts of Japan"],
        "open_en": [
            "Since I started boiling water in a Nambu iron kettle, tea time feels special."
        ],
        "color_en": [
            "Empty an iron kettle after use and let the leftover heat dry it to prevent rust.",
            "Edo kiriko glasses sparkle when light hits the cut patterns.",
        ],
    },
}

# fact groups in facts.py use short names; map them onto GROUPS keys
FACT_GROUP_ALIAS = {
    ("rail", "history"): "rail_history",
    ("rail", "tokyo"): "tokyo_rail",
    ("pets", "days"): "pet_days",
    ("craft", "other"): "crafts_other",
}

# ---------------------------------------------------------------------------- per topic voice
FEEL = {
    "geo": [
        "実際にその場に立つと、写真で見るのとはまったく違う迫力が{ある}。",
        "次は季節を変えて、もう一度訪れてみた{い}。",
        "地図を眺めているだけでも、行ってみたい場所がどんどん増えて{いく}。",
        "旅の記憶は、時間がたっても不思議と色あせ{ません|ない}。",
    ],
    "food": [
        "手間をかけた分だけ、料理はちゃんとおいしくなる気が{する}。",
        "ひと口食べて、思わず「おいしい」と声が{出ました|出た}。",
        "家族にも好評で、またすぐに作ることに{なりそうです|なりそうだ}。",
        "やっぱり和食は、毎日食べても飽き{ません|ない}。",
    ],
    "tea": [
        "お茶を淹れる数分間が、一日の中でいちばん落ち着く時間かもしれ{ません|ない}。",
        "同じ茶葉でも、淹れ方ひとつで味が大きく変わるのが面白{い}。",
        "湯気の立つ湯のみを手にすると、自然と肩の力が抜けて{いく}。",
    ],
    "season": [
        "季節の移り変わりを感じながら暮らすのは、やはりいいもの{だ}。",
        "毎年同じ時期に同じ景色を見られることに、ありがたさを{感じます|感じる}。",
        "空模様を気にしながら予定を立てるのも、この季節ならでは{だ}。",
    ],
    "rail": [
        "車窓を流れる景色を眺めていると、時間がたつのを忘れて{しまいます|しまう}。",
        "電車に乗るだけでちょっとした旅行気分になれるのが、うれし{い}。",
        "鉄道の歴史を知ると、いつもの駅も少し違って見えて{くる}。",
    ],
    "pets": [
        "猫のいる暮らしは、毎日が小さな発見の連続{だ}。",
        "寝顔を見ているだけで、一日の疲れが{吹き飛びます|吹き飛ぶ}。",
        "動物と暮らす以上、正しい知識を身につけておきたいと改めて{思いました|思った}。",
    ],
    "garden": [
        "毎朝、少しずつ育っていく様子を見るのが楽しみになって{いる}。",
        "自分で育てた野菜の味は、やはり格別{だ}。",
        "失敗もあるけれど、それも含めて園芸の楽しさだと{思います|思う}。",
    ],
    "pc": [
        "分からないことを一つずつ調べながら進めるのは、案外楽し{い}。",
        "最初はとっつきにくかったけれど、慣れてしまえば手放せない道具に{なった}。",
        "小さな作業でも、自動化できると本当に気持ちが{いいです|いい}。",
    ],
    "astro": [
        "夜空を見上げていると、自分の悩みがとても小さなものに思えて{くる}。",
        "宇宙の大きさを考えると、いつも不思議な気持ちに{なる}。",
        "次の晴れた夜には、また双眼鏡を持ち出してみようと{思います|思う}。",
    ],
    "craft": [
        "職人さんの手仕事を間近で見ると、その技の細やかさに驚かさ{れる}。",
        "長く大切に使える道具があると、暮らしが少し豊かになる気が{する}。",
        "伝統工芸というと敷居が高く{感じられますが|感じられるが}、毎日使える品も多{い}。",
    ],
}

CLOSE = {
    "geo": [
        "機会があれば、ぜひ一度訪れてみて{ください|ほしい}。",
        "次の旅行先の候補に、ぜひ加えてみて{ください|ほしい}。",
    ],
    "food": [
        "今夜の献立の参考にしてみて{ください|ほしい}。",
        "気になった方は、ぜひ家で試してみて{ください|ほしい}。",
    ],
    "tea": [
        "いつものお茶を、一度ていねいに淹れてみて{ください|ほしい}。",
        "自分だけのお気に入りの一杯を探してみて{ください|ほしい}。",
    ],
    "season": [
        "季節の変わり目は体調を崩しやすいので、どうぞお気をつけ{ください|て}。",
        "次の季節が、今から楽しみ{だ}。",
    ],
    "rail": [
        "次の休みには、少し遠くまで列車の旅に出かけてみようと{思います|思う}。",
        "鉄道好きの方もそうでない方も、ぜひ一度乗ってみて{ください|ほしい}。",
    ],
    "pets": [
        "これからも、猫との毎日を記録していきたいと{思います|思う}。",
        "ペットと暮らしている方の参考になれば、うれし{い}。",
    ],
    "garden": [
        "収穫の様子は、また改めて報告{します|する}。",
        "皆さんも、小さな鉢から始めてみては{いかがでしょうか|どうだろう}。",
    ],
    "pc": [
        "次回は、もう少し応用的な使い方をまとめる予定{だ}。",
        "同じところでつまずいている人の参考になれば幸い{だ}。",
    ],
    "astro": [
        "晴れた夜には、ぜひ空を見上げてみて{ください|ほしい}。",
        "次の天文現象も、今から楽しみ{だ}。",
    ],
    "craft": [
        "機会があれば、ぜひ工房や産地を訪ねてみて{ください|ほしい}。",
        "手仕事の品を一つ、暮らしに取り入れてみては{いかがでしょうか|どうだろう}。",
    ],
}

GENERIC_OPEN = {
    "desu": [
        "こんにちは。",
        "久しぶりの更新です。",
        "今日は少し長めの記事です。",
        "ご訪問ありがとうございます。",
        "今回は備忘録をかねて書いておきます。",
        "最近あったことを書いてみます。",
    ],
    "da": [
        "久しぶりの更新。",
        "今日はメモ代わりに書いておく。",
        "最近気になっていることをまとめておく。",
        "ちょっとした覚え書き。",
        "今日の話。",
    ],
}

GENERIC_CLOSE = {
    "desu": [
        "最後まで読んでいただき、ありがとうございました。",
        "何かの参考になればうれしいです。",
        "また続きを書きたいと思います。",
        "皆さんはどう思われますか？",
        "それでは、また次回。",
    ],
    "da": [
        "今日はこのへんで。",
        "また何か分かったら追記する。",
        "以上、自分用のメモ。",
        "続きはまた今度書こうと思う。",
        "誰かの参考になれば幸いだ。",
    ],
}

BLOG_CONN = {
    "desu": [
        "ちなみに、",
        "調べてみると、",
        "そういえば、",
        "実は、",
        "聞いた話では、",
        "意外と知られていませんが、",
        "ご存じの方も多いと思いますが、",
        "また、",
    ],
    "da": [
        "ちなみに、",
        "調べてみたら、",
        "そういえば、",
        "実は、",
        "意外と知られていないが、",
        "また、",
        "ついでに書いておくと、",
    ],
}
ENC_CONN = ["また、", "なお、", "さらに、", "このほか、"]

FAQ_HEAD = [
    "よくある質問",
    "Q&A",
    "素朴な疑問にお答えします",
    "{t}のQ&A",
    "{t}についての質問まとめ",
]
LIST_HEAD = [
    "{t}の豆知識{n}選",
    "知っておきたい{t}のこと",
    "{t}についてのメモ",
    "{t}の基本をおさらい",
    "{t}　まとめ",
]
LIST_CLOSE = {
    "desu": ["以上、{t}についてのまとめでした。", "気になるものはありましたか？"],
    "da": ["以上、{t}についてのまとめ。", "覚えておくと、ちょっと役に立つかもしれない。"],
    "dearu": [],
}

# ---------------------------------------------------------------------------- how-to
HOWTO = [
    {
        "topic": "food",
        "group": "miso",
        "title": ["味噌汁の作り方", "基本の味噌汁", "おいしい味噌汁を作る手順"],
        "intro": [
            "毎日作るものだからこそ、基本の手順をおさらいして{おきます|おく}。",
            "豆腐とわかめの、いちばん基本の味噌汁の作り方{です|}。",
        ],
        "items": ["出汁 600ml", "豆腐 半丁", "乾燥わかめ 小さじ2", "味噌 大さじ3", "長ねぎ 少々"],
        "steps": [
            "鍋に出汁を入れて中火に{かけます|かける}。",
            "さいの目に切った豆腐とわかめを入れ、ひと煮立ちさせ{ます|る}。",
            "火を弱めて、味噌をお玉の中で少しずつ溶き入れ{ます|る}。",
            "煮立つ直前で火を止め、刻んだねぎを散らして完成{です|}。",
        ],
        "tips": ["味噌を入れたあとに沸騰させないことが、香りよく仕上げるポイント{だ}。"],
    },
    {
        "topic": "food",
        "group": "dashi",
        "title": ["合わせだしのとり方", "昆布とかつお節の出汁", "基本の出汁をとる"],
        "intro": ["昆布とかつお節を使った、基本の合わせだしのとり方をまとめて{おきます|おく}。"],
        "items": ["水 1リットル", "昆布 10g", "かつお節 20g"],
        "steps": [
            "鍋に水と昆布を入れ、30分ほど{おきます|おく}。",
            "弱めの中火にかけ、沸騰する直前に昆布を取り{出します|出す}。",
            "沸騰したらかつお節を入れ、すぐに火を{止めます|止める}。",
            "かつお節が沈んだら、キッチンペーパーを敷いたざるで{こします|こす}。",
        ],
        "tips": [
            "こすときにかつお節をぎゅっと絞ると雑味が出るので、自然に落ちるのを待つとよ{い}。"
        ],
    },
    {
        "topic": "food",
        "group": "dishes",
        "title": ["天ぷらをからりと揚げるコツ", "おうちで天ぷら", "サクサク天ぷらの作り方"],
        "intro": ["家で揚げてもべたっとしない、天ぷらの揚げ方を紹介{します|する}。"],
        "items": [
            "エビ 6尾",
            "さつまいも 1/2本",
            "小麦粉 100g",
            "卵 1個",
            "冷水 150ml",
            "揚げ油 適量",
        ],
        "steps": [
            "エビは殻と背わたを取り、腹側に数か所切り込みを{入れます|入れる}。",
            "ボウルで卵と冷水を混ぜ、ふるった小麦粉を加えてさっくりと{混ぜます|混ぜる}。",
            "揚げ油を170〜180℃に熱{します|する}。",
            "具材に衣をつけ、一度にたくさん入れすぎないように{揚げます|揚げる}。",
            "油をよく切って、{熱いうちにいただきます|熱いうちに食べる}。",
        ],
        "tips": ["衣は使う直前に作り、冷たいまま使うのがコツ{だ}。"],
    },
    {
        "topic": "tea",
        "group": "brewing",
        "title": ["おいしい煎茶の淹れ方", "急須で煎茶を淹れる", "煎茶の淹れ方のコツ"],
        "intro": ["急須を使った、二人分の煎茶の淹れ方{です|}。"],
        "items": ["煎茶 6g", "お湯 200ml", "急須", "湯のみ 2つ"],
        "steps": [
            "お湯を沸かし、湯のみに注いで少し{冷まします|冷ます}。",
            "急須に茶葉を{入れます|入れる}。",
            "湯のみのお湯を急須に移し、ふたをして1分ほど{待ちます|待つ}。",
            "二つの湯のみに少しずつ交互に注ぎ分け、最後の一滴まで注ぎ{切ります|切る}。",
        ],
        "tips": ["湯のみに一度移すことで、お湯がちょうどよい温度まで{下がります|下がる}。"],
    },
    {
        "topic": "tea",
        "group": "matcha",
        "title": ["抹茶の点て方", "おうちで抹茶を点てる", "はじめての抹茶の点て方"],
        "intro": ["道具が少しあれば、抹茶は家でも気軽に点てられ{ます|る}。"],
        "items": ["抹茶 2g（茶杓2杯ほど）", "お湯 70ml", "茶碗", "茶筅", "茶こし"],
        "steps": [
            "茶碗にお湯を入れて温め、そのお湯を捨てて水気を{ふき取ります|ふき取る}。",
            "茶こしでふるった抹茶を茶碗に{入れます|入れる}。",
            "80℃くらいのお湯を{注ぎます|注ぐ}。",
            "茶筅を手首で前後にすばやく動かし、細かい泡を{立てます|立てる}。",
            "最後に表面を整えて、茶筅を静かに引き{上げます|上げる}。",
        ],
        "tips": ["力を入れすぎず、手首をやわらかく使うのがコツ{だ}。"],
    },
    {
        "topic": "garden",
        "group": "veg",
        "title": ["ミニトマトの育て方", "プランターでミニトマト", "ミニトマト栽培の手順"],
        "intro": ["ベランダでも育てやすい、ミニトマトの育て方をまとめ{ました|た}。"],
        "items": ["ミニトマトの苗", "深さのあるプランター", "野菜用の培養土", "支柱とひも"],
        "steps": [
            "4月下旬から5月ごろ、日当たりのよい場所でプランターに苗を植え{つけます|つける}。",
            "苗の横に支柱を立て、茎をひもでゆるく{結びます|結ぶ}。",
            "わき芽が出てきたら、小さいうちに摘み{取ります|取る}。",
            "土の表面が乾いたら、たっぷり水を{やります|やる}。",
            "実が赤く色づいたら、順に収穫{します|する}。",
        ],
        "tips": [
            "トマトは同じナス科の野菜と続けて植えると、連作障害が起きやすいので注意{します|する}。"
        ],
    },
    {
        "topic": "garden",
        "group": "care",
        "title": ["鉢植えの水やりの基本", "失敗しない水やり", "水やりのコツ"],
        "intro": ["水やりは簡単なようで奥が深いので、基本をまとめて{おきます|おく}。"],
        "items": [],
        "steps": [
            "指で土の表面をさわって、乾いているかを確かめ{ます|る}。",
            "乾いていたら、鉢底から水が流れ出るまでたっぷり{与えます|与える}。",
            "受け皿にたまった水は{捨てます|捨てる}。",
            "夏は朝か夕方、冬は暖かい日中に水やりを{します|する}。",
        ],
        "tips": ["毎日決まった量を与えるより、土の乾き具合を見て与えるほうが失敗が少な{い}。"],
    },
    {
        "topic": "garden",
        "group": "flowers",
        "title": ["チューリップの球根の植え方", "秋に植える球根", "チューリップを咲かせよう"],
        "intro": ["春にチューリップを咲かせるには、秋のうちに球根を植えて{おきます|おく}。"],
        "items": ["チューリップの球根", "プランター", "草花用の培養土"],
        "steps": [
            "10月から11月ごろに、球根を用意{します|する}。",
            "プランターに培養土を{入れます|入れる}。",
            "球根のとがったほうを上にして、少し間をあけて{並べます|並べる}。",
            "土をかぶせて、たっぷり水を{やります|やる}。",
            "冬の間も、土が乾いたら水やりを忘れないように{します|する}。",
        ],
        "tips": ["冬の寒さに当てることで、春にきちんと花が咲くように{なる}。"],
    },
    {
        "topic": "pc",
        "group": "git",
        "title": [
            "Gitで最初のコミットをする",
            "Git入門：リポジトリを作ってコミットまで",
            "はじめてのコミット",
        ],
        "intro": ["Gitをインストールしたら、まずは最初のコミットまで進めてみ{ます|る}。"],
        "items": [],
        "steps": [
            "「git config --global user.name」と「git config --global user.email」で名前とメールアドレスを設定{します|する}。",
            "作業用のフォルダを作り、「git init」でリポジトリを作成{します|する}。",
            "ファイルを作成または編集{します|する}。",
            "「git add ファイル名」で、変更をステージに登録{します|する}。",
            '「git commit -m "最初のコミット"」で、変更を記録{します|する}。',
            "「git log」で、コミットが記録されたことを確認{します|する}。",
        ],
        "tips": ["困ったときは、まず「git status」で今の状態を確かめるとよ{い}。"],
    },
    {
        "topic": "pc",
        "group": "python",
        "title": ["Pythonで最初のプログラム", "Hello, Python", "Pythonで文字を表示してみる"],
        "intro": ["Pythonを使って、画面に文字を表示するところまでやってみ{ます|る}。"],
        "items": [],
        "steps": [
            "公式サイトなどから、Pythonをインストール{します|する}。",
            "テキストエディタで「hello.py」というファイルを{作ります|作る}。",
            'ファイルに「print("こんにちは")」と1行書いて保存{します|する}。',
            "ターミナルで「python hello.py」と入力して実行{します|する}。",
            "画面に「こんにちは」と表示されれば成功{です|だ}。",
        ],
        "tips": ["ファイル名の拡張子は「.py」にするのを忘れないように{します|する}。"],
    },
    {
        "topic": "pc",
        "group": "basics",
        "title": [
            "パソコンのバックアップ手順",
            "今日からできるバックアップ",
            "データを守るバックアップ",
        ],
        "intro": [
            "パソコンが壊れてからでは遅いので、バックアップの手順をまとめて{おきます|おく}。"
        ],
        "items": ["外付けのHDDまたはSSD", "クラウドストレージ"],
        "steps": [
            "バックアップしたいデータを整理{します|する}。",
            "外付けのHDDやSSDにコピー{します|する}。",
            "クラウドストレージにも、同じデータを保存{します|する}。",
            "定期的にバックアップを取る日を決めて{おきます|おく}。",
            "ときどき、バックアップから実際にファイルを戻せるか{確かめます|確かめる}。",
        ],
        "tips": ["「3-2-1ルール」を意識すると、大切なデータを失いにくく{なる}。"],
    },
    {
        "topic": "pets",
        "group": "cats",
        "title": ["猫の爪切りのコツ", "嫌がる猫の爪を切る", "猫の爪切り手順"],
        "intro": ["爪切りが苦手な猫でも、少しずつ慣らせば切れるように{なります|なる}。"],
        "items": ["猫用の爪切り", "タオル", "おやつ"],
        "steps": [
            "猫がリラックスしているときを{選びます|選ぶ}。",
            "肉球を軽く押して、爪を{出します|出す}。",
            "ピンク色に見える血管の部分を避け、先の透明なところだけを{切ります|切る}。",
            "一度に全部切ろうとせず、嫌がったら日を{改めます|改める}。",
            "終わったら、ほめておやつを{あげます|あげる}。",
        ],
        "tips": ["爪切りのあとは、たくさんほめてあげるのが大切{だ}。"],
    },
    {
        "topic": "astro",
        "group": "stars",
        "title": ["流星群の観察ガイド", "流れ星を見るコツ", "はじめての流星群観察"],
        "intro": ["特別な道具がなくても、流星群は肉眼で十分に{楽しめます|楽しめる}。"],
        "items": ["レジャーシート", "上着", "温かい飲み物"],
        "steps": [
            "天気予報と、流星群が最も活発になる日を確認{します|する}。",
            "街明かりの少ない、空が広く見渡せる場所を{選びます|選ぶ}。",
            "レジャーシートに寝転ぶなどして、楽な姿勢で空全体を{眺めます|眺める}。",
            "目が暗さに慣れるまで、15分ほど{待ちます|待つ}。",
        ],
        "tips": [
            "双眼鏡や望遠鏡は視野が狭いので、流れ星を見るには肉眼が向いて{いる}。",
            "夏でも夜は冷えることがあるので、上着を一枚持っていくと安心{だ}。",
        ],
    },
    {
        "topic": "astro",
        "group": "moon",
        "title": ["双眼鏡で月を見よう", "月の観察のしかた", "月のクレーターを見る"],
        "intro": ["双眼鏡が一つあれば、月の表面の様子がよく{分かります|分かる}。"],
        "items": ["双眼鏡"],
        "steps": [
            "月が見える時間と方角を{調べます|調べる}。",
            "明るい場所を避け、双眼鏡のピントを{合わせます|合わせる}。",
            "月の欠けぎわに注目して、クレーターを{探します|探す}。",
        ],
        "tips": ["満月よりも半月のころのほうが、影ができてクレーターが立体的に{見えます|見える}。"],
    },
    {
        "topic": "season",
        "group": "rainy",
        "title": ["梅雨どきの部屋干しのコツ", "雨の日の洗濯", "洗濯物を早く乾かす方法"],
        "intro": ["梅雨の時期でも、少しの工夫で洗濯物は乾きやすく{なります|なる}。"],
        "items": [],
        "steps": [
            "洗濯物は間隔をあけて干し、空気の通り道を{作ります|作る}。",
            "長いものを外側、短いものを内側に並べ{ます|る}。",
            "扇風機やサーキュレーターで風を{当てます|当てる}。",
            "除湿機やエアコンの除湿機能を{使います|使う}。",
        ],
        "tips": ["洗濯が終わったら、なるべく早く干すことも大切{だ}。"],
    },
    {
        "topic": "season",
        "group": "summer_autumn",
        "title": ["台風への備え", "台風が来る前にやること", "台風対策チェックリスト"],
        "intro": ["台風が近づく前に、家の周りと持ち物を確認して{おきます|おく}。"],
        "items": ["懐中電灯", "モバイルバッテリー", "飲み水", "非常食"],
        "steps": [
            "ベランダの植木鉢など、飛ばされそうなものを室内に{入れます|入れる}。",
            "懐中電灯や飲み水、非常食を用意{します|する}。",
            "住んでいる地域のハザードマップで、避難場所を確認{します|する}。",
            "気象情報を、こまめに確認{します|する}。",
        ],
        "tips": ["停電に備えて、スマートフォンは早めに充電しておくと安心{だ}。"],
    },
    {
        "topic": "rail",
        "group": "shinkansen",
        "title": ["新幹線の乗り方", "はじめての新幹線", "新幹線に乗るまでの流れ"],
        "intro": ["初めて新幹線に乗る人のために、乗車までの流れをまとめ{ました|た}。"],
        "items": [],
        "steps": [
            "乗車券と特急券、またはネット予約の乗車用カードなどを用意{します|する}。",
            "新幹線乗り場の改札を{通ります|通る}。",
            "発車案内の表示で、列車名と発車時刻、号車を確認{します|する}。",
            "指定席の場合は、切符に書かれた号車と座席番号の席に{座ります|座る}。",
            "降りる駅が近づいたら、忘れ物がないか{確かめます|確かめる}。",
        ],
        "tips": ["大きな荷物がある場合は、事前に置き場所のルールを確認しておくと安心{だ}。"],
    },
    {
        "topic": "geo",
        "group": "mountains",
        "title": ["富士登山の準備", "はじめての富士登山", "富士山に登る前に"],
        "intro": ["富士山は人気の山ですが、準備をしっかりしてから登ることが大切{です|だ}。"],
        "items": ["レインウェア", "防寒着", "ヘッドライト", "飲み物", "行動食", "登山靴"],
        "steps": [
            "7月上旬から9月上旬の登山シーズンの中から、天気のよい日を{選びます|選ぶ}。",
            "山小屋に泊まる場合は、早めに予約{します|する}。",
            "五合目で1時間ほど過ごし、体を高さに慣らしてから登り{始めます|始める}。",
            "ゆっくりしたペースで、こまめに水分をとりながら{登ります|登る}。",
            "頭痛や吐き気など高山病の症状が出たら、無理をせず下山{します|する}。",
        ],
        "tips": ["山頂付近は真夏でも気温が低いので、防寒着を忘れないように{します|する}。"],
    },
    {
        "topic": "craft",
        "group": "urushi",
        "title": ["漆器のお手入れ", "漆のお椀を長く使うには", "漆器の洗い方"],
        "intro": ["漆器は扱いが難しそうに見えますが、基本を守れば毎日{使えます|使える}。"],
        "items": [],
        "steps": [
            "使い終わったら、なるべく早くぬるま湯で{洗います|洗う}。",
            "やわらかいスポンジで、やさしく汚れを{落とします|落とす}。",
            "洗ったらすぐに、やわらかい布で水気を{ふき取ります|ふき取る}。",
            "直射日光の当たらない場所に{しまいます|しまう}。",
        ],
        "tips": ["食器洗い機や電子レンジは漆器を傷めるので、使わないように{します|する}。"],
    },
]

STEP_MARKS = ["{n}. ", "{n}）", "{c}", "({n}) ", "手順{n}：", "・"]
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"

# ---------------------------------------------------------------------------- English voice
EN_OPEN = [
    "Hi everyone!",
    "It's been a while since my last post.",
    "Here are some notes I wanted to keep.",
    "Today I want to share something I learned recently.",
    "Quick post today.",
]
EN_CLOSE = [
    "Thanks for reading!",
    "I hope this helps someone.",
    "More next time.",
    "Let me know what you think.",
    "That's all for today.",
]
EN_FEEL = {
    "geo": [
        "Standing there in person was far more impressive than any photo.",
        "I want to go back in another season.",
    ],
    "food": [
        "It tasted so good that my family asked for seconds.",
        "Home cooking really is worth the effort.",
    ],
    "tea": [
        "Those few minutes of making tea are the calmest part of my day.",
        "It is amazing how much the taste changes with the way you brew it.",
    ],
    "season": ["I love feeling the seasons change.", "Every year I look forward to this time."],
    "rail": [
        "Watching the scenery from the train window, I lost track of time.",
        "Even a short train ride feels like a small trip.",
    ],
    "pets": [
        "Life with a cat is full of small surprises.",
        "Just watching her sleep makes the day's stress disappear.",
    ],
    "garden": [
        "Watching the plants grow a little every morning is my new hobby.",
        "Vegetables you grow yourself taste special.",
    ],
    "pc": [
        "Figuring things out one step at a time was more fun than I expected.",
        "Automating even a small task feels great.",
    ],
    "astro": [
        "Looking up at the night sky makes my worries feel small.",
        "I'm already looking forward to the next clear night.",
    ],
    "craft": [
        "Watching the craftspeople at work up close was amazing.",
        "Things made by hand make everyday life a little richer.",
    ],
}
EN_CONN = ["By the way, ", "Interestingly, ", "Also, ", "Fun fact: ", "As it turns out, "]
EN_FAQ_HEAD = ["FAQ", "Frequently asked questions", "Q&A: {t}", "Common questions about {t}"]
EN_LIST_HEAD = ["{n} facts about {t}", "Things to know about {t}", "{t}: quick notes"]

HOWTO_EN = [
    {
        "topic": "food",
        "title": "How to make miso soup",
        "items": [
            "600 ml dashi",
            "half a block of tofu",
            "2 tsp dried wakame",
            "3 tbsp miso",
            "a little green onion",
        ],
        "steps": [
            "Heat the dashi in a pot over medium heat.",
            "Add the diced tofu and wakame and bring to a simmer.",
            "Turn the heat down and dissolve the miso little by little in a ladle.",
            "Turn off the heat just before it boils and sprinkle with green onion.",
        ],
        "tip": "Do not let the soup boil after the miso goes in.",
    },
    {
        "topic": "food",
        "title": "How to make awase dashi",
        "items": ["1 liter of water", "10 g kombu", "20 g katsuobushi"],
        "steps": [
            "Soak the kombu in the water for about 30 minutes.",
            "Heat gently and take out the kombu just before the water boils.",
            "When the water boils, add the katsuobushi and turn off the heat.",
            "When the flakes sink, strain through a paper towel.",
        ],
        "tip": "Do not squeeze the flakes, or the dashi will taste bitter.",
    },
    {
        "topic": "tea",
        "title": "How to brew sencha",
        "items": ["6 g sencha", "200 ml hot water", "a kyusu teapot", "two cups"],
        "steps": [
            "Boil the water and pour it into the cups to cool it a little.",
            "Put the tea leaves in the teapot.",
            "Pour the water from the cups into the pot and wait about one minute.",
            "Pour into the two cups a little at a time, down to the last drop.",
        ],
        "tip": "Sencha tastes best with water at about 70 to 80°C.",
    },
    {
        "topic": "tea",
        "title": "How to whisk matcha",
        "items": [
            "2 g matcha",
            "70 ml hot water",
            "a tea bowl",
            "a chasen whisk",
            "a tea strainer",
        ],
        "steps": [
            "Warm the bowl with hot water, then pour it out and wipe the bowl dry.",
            "Sift the matcha into the bowl.",
            "Pour in water at about 80°C.",
            "Whisk quickly back and forth from the wrist until fine foam forms.",
        ],
        "tip": "Keep your wrist loose and do not press the whisk too hard.",
    },
    {
        "topic": "pc",
        "title": "Your first Git commit",
        "items": [],
        "steps": [
            "Create a folder and run git init to make a repository.",
            "Create or edit a file.",
            "Run git add with the file name to stage the change.",
            'Run git commit -m "first commit" to record it.',
            "Run git log to check that the commit is there.",
        ],
        "tip": "When in doubt, run git status to see where you are.",
    },
    {
        "topic": "pc",
        "title": "Hello, Python",
        "items": [],
        "steps": [
            "Install Python.",
            "Create a file called hello.py in a text editor.",
            'Write print("Hello") in it and save.',
            "Run python hello.py in a terminal.",
        ],
        "tip": "Remember that Python files end in .py.",
    },
    {
        "topic": "garden",
        "title": "Growing cherry tomatoes in a planter",
        "items": ["a seedling", "a deep planter", "vegetable potting soil", "a stake and string"],
        "steps": [
            "Plant the seedling in a sunny spot between late April and May.",
            "Set a stake beside it and tie the stem loosely.",
            "Pinch off side shoots while they are small.",
            "Water well whenever the soil surface is dry.",
            "Pick the tomatoes as they turn red.",
        ],
        "tip": "Do not plant tomatoes where other nightshades grew last year.",
    },
    {
        "topic": "astro",
        "title": "How to watch a meteor shower",
        "items": ["a picnic mat", "a jacket", "a warm drink"],
        "steps": [
            "Check the weather and the peak night of the shower.",
            "Choose a dark place with a wide view of the sky.",
            "Lie back and look at the whole sky.",
            "Give your eyes about fifteen minutes to get used to the dark.",
        ],
        "tip": "Your naked eyes are better than binoculars for spotting meteors.",
    },
    {
        "topic": "pets",
        "title": "Trimming your cat's claws",
        "items": ["cat nail clippers", "a towel", "treats"],
        "steps": [
            "Pick a moment when your cat is relaxed.",
            "Press the paw pad gently to push out a claw.",
            "Cut only the clear tip, avoiding the pink part.",
            "Stop if your cat gets upset and try again another day.",
        ],
        "tip": "Praise your cat and give a treat afterwards.",
    },
]

# ---------------------------------------------------------------------------- mixed documents
GLOSSARY = [
    ("抹茶", "matcha", "powdered green tea"),
    ("煎茶", "sencha", "the most common Japanese green tea"),
    ("玉露", "gyokuro", "shade-grown premium green tea"),
    ("ほうじ茶", "hojicha", "roasted green tea"),
    ("茶筅", "chasen", "bamboo whisk for matcha"),
    ("急須", "kyusu", "Japanese teapot"),
    ("出汁", "dashi", "soup stock"),
    ("昆布", "kombu", "kelp"),
    ("かつお節", "katsuobushi", "dried bonito flakes"),
    ("味噌", "miso", "fermented soybean paste"),
    ("納豆", "natto", "fermented soybeans"),
    ("梅干し", "umeboshi", "salted, dried ume fruit"),
    ("梅雨", "tsuyu", "the rainy season"),
    ("紅葉", "koyo", "autumn leaves"),
    ("桜前線", "sakura zensen", "cherry blossom front"),
    ("台風", "taifu", "typhoon"),
    ("冬至", "toji", "winter solstice"),
    ("新幹線", "shinkansen", "bullet train"),
    ("改札", "kaisatsu", "ticket gate"),
    ("駅弁", "ekiben", "station lunch box"),
    ("猫", "neko", "cat"),
    ("肉球", "nikukyu", "paw pad"),
    ("金魚", "kingyo", "goldfish"),
    ("水やり", "mizuyari", "watering"),
    ("球根", "kyukon", "bulb"),
    ("支柱", "shichu", "plant stake"),
    ("字下げ", "jisage", "indentation"),
    ("拡張子", "kakucho-shi", "file extension"),
    ("月", "tsuki", "the Moon"),
    ("惑星", "wakusei", "planet"),
    ("流星群", "ryuseigun", "meteor shower"),
    ("北極星", "hokkyokusei", "the North Star"),
    ("和紙", "washi", "traditional Japanese paper"),
    ("漆", "urushi", "lacquer"),
    ("金継ぎ", "kintsugi", "repairing pottery with lacquer and gold"),
    ("磁器", "jiki", "porcelain"),
    ("鉄瓶", "tetsubin", "iron kettle"),
    ("山頂", "sancho", "summit"),
    ("湖", "mizuumi", "lake"),
    ("世界遺産", "sekai isan", "World Heritage Site"),
]
GLOSSARY_TOPIC = {
    "tea": ["抹茶", "煎茶", "玉露", "ほうじ茶", "茶筅", "急須"],
    "food": ["出汁", "昆布", "かつお節", "味噌", "納豆", "梅干し"],
    "season": ["梅雨", "紅葉", "桜前線", "台風", "冬至"],
    "rail": ["新幹線", "改札", "駅弁"],
    "pets": ["猫", "肉球", "金魚"],
    "garden": ["水やり", "球根", "支柱"],
    "pc": ["字下げ", "拡張子"],
    "astro": ["月", "惑星", "流星群", "北極星"],
    "craft": ["和紙", "漆", "金継ぎ", "磁器", "鉄瓶"],
    "geo": ["山頂", "湖", "世界遺産"],
}

CMD_NOTES = [
    ("git init", "新しいリポジトリを作る"),
    ("git status", "作業中の状態を確認する"),
    ("git add .", "変更をまとめてステージに登録する"),
    ('git commit -m "update"', "ステージした変更を履歴に記録する"),
    ("git log --oneline", "コミットの履歴を1行ずつ表示する"),
    ("git clone <URL>", "リポジトリを手元に複製する"),
    ("git branch", "ブランチの一覧を表示する"),
    ("git switch -c feature", "新しいブランチを作って切り替える"),
    ("git diff", "まだステージしていない変更を表示する"),
    ("python --version", "Pythonのバージョンを確認する"),
    ("python -m venv .venv", "仮想環境を作る"),
    ("pip install requests", "requestsライブラリをインストールする"),
    ("pip list", "インストール済みのパッケージを一覧表示する"),
]

CODE_SNIPPETS = [
    (
        'for i in range(3):\n    print("こんにちは", i)',
        "インデントでブロックを表すのがPythonの特徴。スペース4つで字下げしている。",
    ),
    (
        'name = "ミケ"\nage = 3\nprint(f"{name}は{age}歳です")',
        "f文字列を使うと、変数の値を文字列の中に埋め込める。",
    ),
    (
        'fruits = ["りんご", "みかん", "ぶどう"]\nfor f in fruits:\n    print(f)',
        "リストの中身を順番に取り出して表示する例。",
    ),
    (
        "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
        "defで関数を定義する。returnで値を返す。",
    ),
]

EN_SPRINKLE = {
    "tea": ("Today's tea time", ["#matcha", "#greentea", "#japanesetea"]),
    "food": ("Cooking log", ["#washoku", "#homecooking", "#dashi"]),
    "geo": ("Weekend trip memo", ["#travel", "#japan", "#mountfuji"]),
    "season": ("Seasonal notes", ["#japan", "#seasons", "#sakura"]),
    "rail": ("Train diary", ["#shinkansen", "#train", "#railway"]),
    "pets": ("My cat update", ["#cat", "#catsofinstagram", "#neko"]),
    "garden": ("Garden log", ["#gardening", "#balconygarden", "#tomato"]),
    "pc": ("Study log: coding", ["#python", "#git", "#programming"]),
    "astro": ("Night sky notes", ["#astronomy", "#stargazing", "#moon"]),
    "craft": ("Handmade crafts", ["#craft", "#kintsugi", "#washi"]),
}

# short noun-phrase names of the groups, for headings such as 「{name}の豆知識5選」
NAME = {
    "mountains": "富士山",
    "water": "日本の湖と川",
    "prefs": "都道府県",
    "sankei": "日本三景",
    "kyushu": "九州の自然",
    "cities": "東京と京都の名所",
    "dashi": "出汁",
    "miso": "味噌汁",
    "dishes": "寿司と天ぷら",
    "preserved": "納豆と梅干し",
    "noodles": "うどんとそば",
    "newyear": "お正月の料理",
    "kinds": "日本茶",
    "brewing": "お茶の淹れ方",
    "matcha": "抹茶",
    "history": "お茶の歴史",
    "regions": "お茶の産地",
    "rainy": "梅雨",
    "spring": "桜",
    "summer_autumn": "夏から秋の季節",
    "calendar": "暦と季節の行事",
    "rail_history": "鉄道の歴史",
    "shinkansen": "新幹線",
    "tokyo_rail": "山手線と東京駅",
    "seikan": "青函トンネル",
    "cats": "猫",
    "food_safety": "ペットの食事",
    "pet_days": "猫の日と犬の日",
    "dogs": "犬の飼い方",
    "fish": "金魚",
    "veg": "家庭菜園",
    "care": "水やりと土",
    "flowers": "季節の花",
    "python": "Python",
    "git": "Git",
    "basics": "パソコンの基本",
    "moon": "月",
    "planets": "太陽系の惑星",
    "stars": "星空",
    "washi": "和紙",
    "urushi": "漆と金継ぎ",
    "pottery": "焼き物",
    "crafts_other": "伝統工芸品",
}
