// Writes the benign corpus next to this file: one JSON-lines file per group,
// each line one ordinary request { id, group, method, path, headers, body?,
// encoding?, note? } (see ../corpus.ts for how they are sent).
//
// Deterministic: a fixed seed drives every choice, so running it again gives
// the same files byte for byte. All text below is written for this corpus.
//
//   npx tsx test/waf/benign/generate.ts
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT_DIR = dirname(fileURLToPath(import.meta.url));
const SEED = 20240611;

interface Item {
  id: string;
  group: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  encoding?: 'base64';
  note?: string;
}

// ---------------------------------------------------------------------------
// Seeded choices

let state = SEED >>> 0;
/** mulberry32: small, fast, good enough to vary a test corpus. */
function rand(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number): boolean => rand() < p;
function sample<T>(xs: readonly T[], n: number): T[] {
  const copy = [...xs];
  const out: T[] = [];
  while (out.length < n && copy.length) out.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]!);
  return out;
}
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const alnum = (n: number): string => Array.from({ length: n }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[int(0, 61)]).join('');
const uuid = (): string => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[int(0, 3)]}${hex(3)}-${hex(12)}`;
const money = (lo: number, hi: number): number => Math.round((lo + rand() * (hi - lo)) * 100) / 100;
const BASE_TIME = Date.UTC(2024, 5, 11, 9, 0, 0);
const isoTime = (): string => new Date(BASE_TIME + int(-200, 60) * 86400000 + int(0, 86399) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const isoDate = (fromDays = -300, toDays = 120): string => new Date(BASE_TIME + int(fromDays, toDays) * 86400000).toISOString().slice(0, 10);
const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(0, 255)));

// ---------------------------------------------------------------------------
// People, places, things

const FIRST = ['Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Mateo', 'Sophia', 'Lucas', 'Mia', 'Ethan', 'Chloé', 'Zoë', 'José', 'Siobhan', 'Aoife', 'Priya', 'Ahmed', 'Fatima', 'Wei', 'Yuki', 'Hana', 'Lars', 'Ingrid', 'Pierre', 'Björn', 'Renée', 'Seán', 'Dmitri', 'Olga', 'Kwame', 'Amara', 'Diego', 'Camila', 'Grace', 'Tomás', 'Niamh', 'Anh', 'Jonas', 'Leila', 'Marta'];
const LAST = ["O'Brien", "O'Connor", "D'Angelo", 'McDonald', 'Smith', 'García', 'Müller', 'Nguyen', 'Kim', 'Tanaka', 'Okafor', 'Johansson', 'Dubois', 'Rossi', 'Kowalski', 'Silva', 'Patel', 'Schmidt', 'van der Berg', 'St. John', 'Smith-Jones', 'Lefèvre', "O'Sullivan", 'Murphy', 'Byrne', 'Fernández', 'Novak', 'Andersson', 'Moreau', 'Yamamoto'];
const STREETS = ['221B Baker Street', '14 Queen\'s Road', '742 Evergreen Terrace', '12 Rue de l\'Église', 'Calle Mayor 5, 2º izq.', '33 King St', '8 Harbour View', '1 Main Street', '57 Elm Avenue', '9 Chemin des Vignes', 'Hauptstraße 21', '3-2-1 Nishi-Shinjuku', '100 Nanjing Road', '45 St. Stephen\'s Green', 'Flat 2, 19 Mill Lane', '600 W 5th Ave, Suite 210'];
const LINE2 = ['Apt. 5B', 'Flat 3', 'Unit 7', '2nd floor', 'c/o Reception', 'Building C', 'Room 1204'];
const CITIES: [string, string, string][] = [
  ['Dublin', 'D02 X285', 'IE'], ['Cork', 'T12 RX2C', 'IE'], ['London', 'NW1 6XE', 'GB'], ['Manchester', 'M1 1AE', 'GB'], ['Paris', '75011', 'FR'], ['Lyon', '69002', 'FR'],
  ['Berlin', '10115', 'DE'], ['München', '80331', 'DE'], ['Madrid', '28013', 'ES'], ['Toronto', 'M5V 2T6', 'CA'], ['Montréal', 'H2X 1Y4', 'CA'], ['São Paulo', '01310-100', 'BR'],
  ['Tokyo', '160-0023', 'JP'], ['Shanghai', '200001', 'CN'], ['Austin', '78701', 'US'], ['Portland', '97205', 'US'], ['Zürich', '8001', 'CH'], ['Kraków', '31-042', 'PL'],
];
const PHONES = ['+1 (555) 010-2345', '+44 20 7946 0958', '+353 1 555 0142', '+33 1 70 18 99 00', '+49 30 901820', '+81 3-1234-5678', '+86 21 5555 0199', '+34 912 345 678', '555-0187', '087 123 4567'];
const DOMAINS = ['example.com', 'example.org', 'mail.example.net', 'example.co.uk', 'example.ie', 'example.de'];
const PRODUCTS: [string, string, number][] = [
  ['SKU-10234', 'Merino wool socks (3 pack)', 14.95], ['SKU-20871', 'Waterproof hiking jacket, men\'s L', 129.0], ['SKU-31002', 'Stainless steel water bottle 750 ml', 24.5],
  ['SKU-40417', 'Espresso beans, 1 kg', 21.9], ['SKU-55120', 'USB-C charger 65W', 39.99], ['SKU-60033', 'Children\'s rain boots, size 28', 27.0], ['SKU-71210', 'Linen duvet cover, double', 89.0],
  ['SKU-80004', 'Notebook A5, dotted', 6.5], ['SKU-90155', 'Cast-iron skillet 26 cm', 45.0], ['SKU-11876', 'Yoga mat 4 mm', 32.0], ['SKU-12990', 'Bluetooth speaker', 59.0], ['SKU-13409', 'Trail running shoes, women\'s 39', 119.95],
];
const CATEGORIES = ['outdoor', 'men', 'women', 'kids', 'kitchen', 'home', 'electronics', 'books', 'garden', 'sport', 'sale', 'new-in'];
const SEARCHES = ['waterproof jacket', 'red running shoes', 'usb-c charger 65w', "harry potter and the philosopher's stone", 'cafe near me', 'linen bed sheets king size', 'kids rain boots', 'espresso machine', 'gift ideas for dad', 'bluetooth speaker waterproof', 'cast iron pan', 'yoga mat non slip', 'winter coat women', 'desk lamp led', '蓝牙耳机', '北京 酒店', '東京 ラーメン', '折りたたみ傘', 'café au lait bowl', 'Müller yogurt'];
const COUPONS = ['SUMMER24', 'WELCOME10', 'FREESHIP', 'VIP-2024', 'SPRING15', 'BDAY-5EUR'];
const COMMENTS = [
  "Hi, I'm writing about order #4471 - it's arrived, but the box was damaged. Don't worry, the item's fine!",
  "Could you update my address? I've moved to 14 Queen's Road (flat 3).",
  'Great service :) Will definitely order again.',
  "We're a family of 4 & need 2 rooms from 12/08 to 15/08, if possible.",
  "I can't log in since yesterday; the page just says \"session expired\".",
  'The price was $49.99 but I was charged €52.30. Why the difference?',
  "Don't ship before Monday, please - we're away for the weekend.",
  "It's a gift, so please don't include the receipt in the parcel.",
  "Loved the talk! Slides would be great, if you're willing to share them.",
  "My name is spelled O'Brien, with an apostrophe, not OBrien.",
  'Is the 2-for-1 offer still valid? The banner says "ends Sunday".',
  'Thanks so much, Renée. You saved my day!',
  "The delivery driver left the parcel at no. 12 instead of no. 21 - could you check?",
  "I'd like to change my plan from monthly to yearly; is there a discount?",
  "The app crashes when I tap 'Save' on the settings page (iPhone 13, iOS 17.5).",
  'Please call me back between 9am and 5pm, Mon-Fri.',
  "We've been customers for 10+ years and this is the first time something's gone wrong.",
  'Can I pick up in store? The one on Main St. is closest to me.',
  "Happy with the quality, though the colour's a bit darker than in the photos.",
  'Question about sizing: I normally wear a 38 (EU); would M or L fit better?',
  "Our team's offsite is on 3 July; we'll need vegetarian options for 6 people.",
  "Hello! Just checking whether you've received my email from last week.",
  'Order arrived in 2 days. Packaging was 100% recyclable, which is great.',
  "Why can't I add more than 5 items to the wish list?",
  "Don't forget to bring your ID and the booking reference on the day.",
  "It's not urgent, but the invoice shows the wrong VAT number.",
  'I rated 4/5 because the instructions were a little confusing.',
  "Where's the best place to park near the venue? Thanks in advance.",
  'Could you split the payment across two cards?',
  "Dear support, my daughter's account was locked after 3 attempts. Could you reset it?",
  "I'm allergic to nuts - does the granola contain any?",
  "Looks good to me! Let's go with option B, as discussed.",
  'Re: your question - yes, the 10:30 slot works for us.',
  "P.S. The photos from Saturday's event are lovely!",
  "Please note: I'll be out of office until the 24th; contact Seán in the meantime.",
  "Is there a student discount? I'm at Trinity College.",
  "Can't wait for the new season to start :-)",
  'The form asks for a postcode, but we don\'t have one in our area.',
  "Could you confirm the total? I make it €127.40 incl. shipping.",
  "Just wanted to say the staff at the Cork branch were brilliant. Cheers!",
];

const BROWSER_UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
  'Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1',
];
const API_UAS = [...BROWSER_UAS.slice(0, 4), 'okhttp/4.12.0', 'Dart/3.4 (dart:io)', 'axios/1.7.2', 'MyShopApp/5.2.1 (iPhone; iOS 17.5.1; Scale/3.00)', 'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)', 'Go-http-client/1.1'];
const LANGS = ['en-US,en;q=0.9', 'en-GB,en;q=0.9,fr;q=0.8', 'de-DE,de;q=0.9,en;q=0.8', 'fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7', 'zh-CN,zh;q=0.9,en;q=0.8', 'ja-JP,ja;q=0.9,en-US;q=0.8', 'es-ES,es;q=0.9', 'pt-BR,pt;q=0.9,en;q=0.8'];
const HTML_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

function person(): { first: string; last: string; email: string; phone: string } {
  const first = pick(FIRST);
  const last = pick(LAST);
  const local = `${first}.${last}`
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z.]/g, '')
    .toLowerCase();
  return { first, last, email: `${local}${chance(0.3) ? int(1, 99) : ''}@${pick(DOMAINS)}`, phone: pick(PHONES) };
}
function address(): Record<string, string> {
  const [city, postalCode, country] = pick(CITIES);
  const a: Record<string, string> = { line1: pick(STREETS), city, postalCode, country };
  if (chance(0.4)) a.line2 = pick(LINE2);
  return a;
}
/** A token shaped like a JWT (random signature): what SPAs send on every API call. */
function bearer(): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(BASE_TIME / 1000);
  return `Bearer ${b64({ alg: 'RS256', typ: 'JWT', kid: hex(8) })}.${b64({ sub: uuid(), iss: 'https://auth.example.com/', aud: 'shop-api', iat: now, exp: now + 3600, scope: 'orders:read orders:write' })}.${randomBytes(64).toString('base64url')}`;
}
function jsonHeaders(withBody: boolean): Record<string, string> {
  const h: Record<string, string> = { 'User-Agent': pick(API_UAS), Accept: 'application/json' };
  if (withBody) h['Content-Type'] = pick(['application/json', 'application/json; charset=utf-8']);
  if (chance(0.8)) h.Authorization = bearer();
  if (chance(0.3)) h['X-Request-Id'] = uuid();
  return h;
}
function formHeaders(origin: string): Record<string, string> {
  return {
    'User-Agent': pick(BROWSER_UAS),
    Accept: HTML_ACCEPT,
    'Accept-Language': pick(LANGS),
    'Content-Type': 'application/x-www-form-urlencoded',
    Origin: 'https://www.example.com',
    Referer: `https://www.example.com${origin}`,
    Cookie: `sessionid=${alnum(32)}; csrftoken=${alnum(32)}`,
  };
}
/** Browsers' urlencoded serialisation (URLSearchParams: space as +, the rest %XX). */
function form(fields: [string, string][]): string {
  return new URLSearchParams(fields).toString();
}

// ---------------------------------------------------------------------------
// Prose, written for this corpus

const PROSE_EN = [
  "We spent the first week of June walking the coastal path from Dingle to Ballydavid. The weather changed every hour: bright sun in the morning, a wall of fog by lunch, and then a soft rain that never quite stopped. Still, it's the kind of place where you don't mind getting wet, because every bend in the road opens onto another bay.",
  "I've had this kettle for about three months now and it's been great. It boils a full litre in under four minutes, the lid opens with one hand, and the water-level window is easy to read. My only complaint is that the base is a little wide for our narrow counter, so it sits slightly off the edge.",
  "Hello, I ordered a pair of hiking boots last Tuesday and the tracking page still says the parcel is waiting at the depot. Could you check whether it's been dispatched? I'm leaving for a trip on the 21st and would really like to have them before then. Thanks in advance for your help.",
  "Preheat the oven to 200 degrees. Toss the potatoes with olive oil, a pinch of salt and some rosemary, then spread them out on a tray so they don't overlap. Roast for about forty minutes, turning them once halfway through, until they're golden and crisp at the edges.",
  "The library will be closed on Monday for the bank holiday and will reopen on Tuesday at nine. The children's reading club meets as usual on Wednesday afternoon, and this month's book is a story about a lighthouse keeper and his cat. New members are always welcome; just ask at the front desk.",
  "Hi team, a quick update on the migration. The new billing service has been running alongside the old one since Friday, and the numbers match for every account we've checked so far. If nothing unexpected turns up, we'll switch traffic over next Thursday morning and keep the old system around for a further two weeks.",
  "Our train from Vienna to Budapest left twenty minutes late, but the journey itself was lovely. We shared a table with an elderly couple who'd been making the same trip every autumn for thirty years, and they gave us a long list of cafés, markets and bathhouses we simply had to visit.",
  "The bridge was completed in 1889 after nearly six years of work. At the time it was the longest of its kind in the country, and the opening ceremony drew a crowd of several thousand people. Today it carries mostly cyclists and pedestrians, and a small plaque on the north side tells the story of the engineers who built it.",
  "Honestly, the new app update is a mixed bag. Dark mode looks fantastic and the search is much faster, but the settings menu has moved and it took me ages to find notifications again. Please don't hide things like that without a short tour, or at least a note in the release notes.",
  "Tomatoes need plenty of sun, regular watering and something to climb. I usually plant them out in late May, once the nights are warm enough, and tie the stems loosely to bamboo canes as they grow. Pinching out the side shoots keeps the plants tidy and helps the fruit ripen before the autumn.",
  "Dear Aunt Margaret, thank you so much for the birthday card and the lovely scarf. It's already been out on three walks with the dog. We're hoping to visit you in August, if that suits; the children keep asking when they can see the garden and the old apple tree again.",
  "Bees tell each other where flowers are through a series of movements known as the waggle dance. The angle of the dance relative to the vertical shows the other bees the direction of the food compared with the sun, while the length of the waggle indicates roughly how far away it is.",
];
const PROSE_ZH = [
  '上周末我们全家去了杭州，在西湖边走了整整一个下午。虽然天气有点闷热，但湖面上的风很舒服，远处的山也被薄雾笼罩着，看起来像一幅水墨画。晚饭我们吃了东坡肉和龙井虾仁，孩子们都说这是这次旅行中最好吃的一顿。',
  '您好，我在贵店购买的电饭煲昨天已经收到了，但是打开包装后发现内胆上有一道明显的划痕。请问可以帮我换一个新的吗？我已经拍了照片，如果需要的话可以发给客服。谢谢！',
  '这款耳机我已经用了两个多月，整体感觉非常不错。降噪效果明显，在地铁上也能安静地听音乐；续航大概有三十个小时，一周只需要充一次电。唯一的缺点是戴久了耳朵会有点疼。',
  '各位同事，下周三下午两点将在三楼会议室召开季度总结会议，请各部门负责人提前准备好本季度的工作汇报，时间控制在十分钟以内。如有特殊情况无法参加，请提前向行政部说明。',
  '做红烧茄子的时候，先把茄子切成滚刀块，用少量盐腌十分钟，挤掉多余的水分。锅里放油烧热后下茄子煎到表面微黄，再加入蒜末、生抽、老抽和少许白糖翻炒，最后淋上一点水淀粉收汁即可。',
  '图书馆将于本月十五日起调整开放时间：周一至周五上午八点至晚上九点，周末上午九点至下午五点。儿童阅览室在周末增加了绘本故事会，欢迎家长带孩子参加。',
  '这次搬家真是累坏了。从找房子、签合同到打包、搬运，前前后后花了将近一个月的时间。不过新家离公司只有十五分钟的步行距离，楼下还有一个小公园，每天早上可以去跑跑步，感觉一切都值得。',
  '据气象台预报，明天起本市将迎来一次明显的降温过程，最高气温将从二十六度降至十八度左右，并伴有小到中雨。请市民注意添加衣物，出行时携带雨具，驾车时减速慢行。',
  '我想咨询一下关于退款的问题。我上个月取消了订单，客服说会在七个工作日内退回，但是到现在已经过去两周了，银行卡上还是没有收到钱。麻烦帮忙查一下进度，谢谢。',
  '学习一门新的语言最重要的是坚持。每天哪怕只花二十分钟，听一段录音、读几页书、写几句话，一年下来也会有很大的进步。不要害怕犯错，多和母语者交流，才是提高口语最快的方法。',
  '奶奶家的院子里有一棵老枣树，每年秋天都会结满红红的枣子。小时候我最喜欢爬到树上摘枣，奶奶总是站在下面一边喊着让我小心，一边笑着用竹竿帮我把高处的枣打下来。',
  '本产品适用于室内使用，请勿放置在潮湿或阳光直射的地方。首次使用前请充电至少四小时，充电时指示灯为红色，充满后变为绿色。如遇故障，请勿自行拆卸，请联系售后服务中心。',
];
const PROSE_JA = [
  '先週の土曜日、友人と一緒に鎌倉へ日帰り旅行に行きました。朝早く出発したので、まだ人の少ない鶴岡八幡宮をゆっくり見て回ることができました。お昼は小町通りでしらす丼を食べ、午後は海沿いを散歩しながら江ノ電で帰りました。',
  'お世話になっております。先日注文した本棚ですが、組み立て用のネジが二本足りませんでした。お手数ですが、不足分を送っていただけないでしょうか。注文番号は確認メールに記載されているものです。どうぞよろしくお願いいたします。',
  'このコーヒーメーカーは使い始めて三か月ほどになりますが、とても満足しています。ボタン一つで豆を挽いてから抽出までしてくれるので、忙しい朝でも美味しいコーヒーが飲めます。ただ、動作音が少し大きいのが気になります。',
  '来週の月曜日は祝日のため、図書館は休館となります。火曜日からは通常どおり午前九時に開館します。なお、子ども向けの読み聞かせ会は水曜日の午後三時から二階のおはなし室で行いますので、ぜひご参加ください。',
  '肉じゃがの作り方を紹介します。じゃがいも、にんじん、玉ねぎを食べやすい大きさに切り、牛肉と一緒に鍋で炒めます。だし汁、砂糖、みりん、醤油を加えて落とし蓋をし、中火で十五分ほど煮込めば完成です。',
  'プロジェクトの進捗についてご報告します。新しい検索機能の開発は予定どおり進んでおり、今週中にテスト環境への反映が完了する見込みです。来週からは利用者の方に試していただき、いただいたご意見をもとに改善を進めていきます。',
  '梅雨に入り、毎日雨が続いています。洗濯物がなかなか乾かないのは困りますが、庭のあじさいがとてもきれいに咲いていて、窓から眺めるのが毎朝の楽しみになっています。',
  '明日は全国的に気温が上がり、東京都心では最高気温が三十二度に達する見込みです。熱中症を防ぐため、こまめに水分をとり、外出の際は帽子や日傘を使うようにしてください。',
  '引っ越しの手続きについて質問があります。転出届は引っ越しの何日前までに提出すればよいのでしょうか。また、マイナンバーカードの住所変更は新しい市役所で行えばよいのか教えていただけると助かります。',
  '日本語の勉強を始めて二年になります。最初はひらがなとカタカナを覚えるだけで精一杯でしたが、今では簡単な小説なら辞書を使いながら読めるようになりました。毎日少しずつでも続けることが大切だと感じています。',
  '祖母の家の近くには小さな川が流れていて、夏になると夜には蛍が飛び交います。子どもの頃、いとこたちと一緒に浴衣を着て、懐中電灯を消したまま川べりを歩いたことを今でもよく覚えています。',
  '本製品をご使用になる前に、必ずこの取扱説明書をお読みください。初めてお使いになるときは、四時間以上充電してください。充電中はランプが赤く点灯し、充電が完了すると緑色に変わります。',
];

// Code a user might paste into a support ticket.
const CODE: { lang: 'js' | 'python' | 'sql'; subject: string; intro: string; code: string }[] = [
  { lang: 'js', subject: 'Widget stopped rendering after upgrade', intro: "Hi, after upgrading to v3 the chart widget stopped rendering. Here's what I have:", code: "const widget = new Widget({ el: '#chart', theme: 'dark' });\nwidget.on('ready', () => console.log('ready'));\nwidget.render(data.slice(0, 10));" },
  { lang: 'js', subject: 'How do I list open orders?', intro: 'Is this the right way to fetch open orders from the API?', code: "fetch('/api/v1/orders?status=open', { headers: { Accept: 'application/json' } })\n  .then((r) => r.json())\n  .then((orders) => orders.forEach((o) => console.log(o.id, o.total)));" },
  { lang: 'js', subject: 'Search box fires too many requests', intro: 'We added a debounce like this but it still sends a request per key press:', code: 'function debounce(fn, ms) {\n  let t;\n  return (...args) => {\n    clearTimeout(t);\n    t = setTimeout(() => fn(...args), ms);\n  };\n}' },
  { lang: 'js', subject: 'Currency formatting in the price component', intro: 'Our price component shows the wrong separator for German customers:', code: "export function formatPrice(amount, currency = 'EUR') {\n  return new Intl.NumberFormat('de-DE', { style: 'currency', currency }).format(amount);\n}" },
  { lang: 'js', subject: 'Basket total is off by a cent', intro: 'The basket total sometimes differs by 0.01 from the invoice. We compute it like this:', code: 'const total = items.reduce((sum, i) => sum + i.price * i.qty, 0);\nconsole.log(total.toFixed(2));' },
  { lang: 'js', subject: 'Health check returns 404', intro: 'The load balancer marks our service down. This is the health route:', code: "import express from 'express';\nconst app = express();\napp.get('/health', (req, res) => res.json({ ok: true }));\napp.listen(3000);" },
  { lang: 'js', subject: 'Sorting by date', intro: 'Dates come back in a strange order when I sort them:', code: 'const dates = rows.map((r) => new Date(r.created_at)).sort((a, b) => a - b);' },
  { lang: 'js', subject: 'Retry logic for webhooks', intro: 'Would this retry loop be acceptable for your webhook endpoint?', code: 'async function deliver(payload, attempts = 5) {\n  for (let i = 0; i < attempts; i++) {\n    const res = await post(payload);\n    if (res.ok) return true;\n    await sleep(2 ** i * 1000);\n  }\n  return false;\n}' },
  { lang: 'python', subject: 'Python client times out', intro: 'Our script times out against the orders endpoint:', code: "import requests\n\nresp = requests.get('https://api.example.com/v1/orders', params={'status': 'open'}, timeout=10)\nresp.raise_for_status()\nfor order in resp.json():\n    print(order['id'], order['total'])" },
  { lang: 'python', subject: 'Interview exercise question', intro: 'For the coding exercise, is this the expected output format?', code: "def fizzbuzz(n):\n    for i in range(1, n + 1):\n        if i % 15 == 0:\n            print('FizzBuzz')\n        elif i % 3 == 0:\n            print('Fizz')\n        elif i % 5 == 0:\n            print('Buzz')\n        else:\n            print(i)" },
  { lang: 'python', subject: 'CSV export totals look wrong', intro: 'When I sum the CSV export per region I get different numbers from the dashboard:', code: "with open('report.csv', newline='') as f:\n    reader = csv.DictReader(f)\n    totals = {}\n    for row in reader:\n        totals[row['region']] = totals.get(row['region'], 0) + float(row['amount'])" },
  { lang: 'python', subject: 'Monthly sales in pandas', intro: 'How can I get monthly sales from the export? I tried:', code: "df = pd.read_csv('sales.csv', parse_dates=['date'])\nmonthly = df.groupby(df['date'].dt.to_period('M'))['amount'].sum()\nprint(monthly.tail(6))" },
  { lang: 'python', subject: 'Printing objects in logs', intro: 'Our log lines show <object at 0x...> instead of values, so I added:', code: "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n    def __repr__(self):\n        return f'Point({self.x}, {self.y})'" },
  { lang: 'python', subject: 'Token expiry calculation', intro: 'Is this the right way to compute when an API token expires?', code: 'from datetime import datetime, timedelta\nexpires = datetime.utcnow() + timedelta(days=30)\nprint(expires.isoformat())' },
  { lang: 'python', subject: 'Django route for order detail', intro: 'The order detail page 404s; here is our URL config:', code: "urlpatterns = [\n    path('orders/<int:pk>/', views.order_detail, name='order-detail'),\n]" },
  { lang: 'python', subject: 'Top three values', intro: 'Quick question about the training material, exercise 4:', code: 'numbers = [3, 1, 4, 1, 5, 9, 2, 6]\nprint(sorted(set(numbers), reverse=True)[:3])' },
  { lang: 'sql', subject: 'Report of recent sign-ups', intro: 'We use this query for the weekly sign-up report; can the export do the same?', code: "SELECT id, email, created_at FROM users WHERE created_at >= '2024-01-01' ORDER BY created_at DESC LIMIT 20;" },
  { lang: 'sql', subject: 'Order status not updating', intro: 'Our nightly job runs this but the dashboard still shows the order as open:', code: "UPDATE orders SET status = 'shipped' WHERE id = 4471;" },
  { lang: 'sql', subject: 'Customers with many orders', intro: 'This is the query from the analytics course; the numbers look too high:', code: 'SELECT c.name, COUNT(o.id) AS orders\nFROM customers c\nLEFT JOIN orders o ON o.customer_id = c.id\nGROUP BY c.name\nHAVING COUNT(o.id) > 5;' },
  { lang: 'sql', subject: 'Slow order lookups', intro: 'Would an index like this help with the slow order page?', code: 'CREATE INDEX idx_orders_customer ON orders (customer_id, created_at);' },
  { lang: 'sql', subject: 'Importing tags', intro: 'We seed the tags table like this before the import:', code: "INSERT INTO tags (name) VALUES ('travel'), ('food'), ('books');" },
  { lang: 'sql', subject: 'Session cleanup', intro: 'Our cleanup job runs every hour:', code: 'DELETE FROM sessions WHERE expires_at < NOW();' },
  { lang: 'sql', subject: 'Best sellers query', intro: 'For the best sellers widget we run:', code: 'SELECT product_id, SUM(quantity) FROM order_items GROUP BY product_id ORDER BY 2 DESC;' },
  { lang: 'sql', subject: 'Events per type last week', intro: 'Is a CTE fine here or should we use a view?', code: "WITH recent AS (SELECT * FROM events WHERE ts > now() - interval '7 days')\nSELECT type, count(*) FROM recent GROUP BY type;" },
];

// ---------------------------------------------------------------------------
// Groups

const items: Item[] = [];
const counters = new Map<string, number>();
function add(group: string, it: Omit<Item, 'id' | 'group'>): void {
  const n = (counters.get(group) ?? 0) + 1;
  counters.set(group, n);
  items.push({ id: `${group}-${String(n).padStart(4, '0')}`, group, ...it });
}
const json = (o: unknown): string => JSON.stringify(o);

function jsonApi(): void {
  const G = 'json-api';
  for (let i = 0; i < 40; i++) {
    const p = person();
    const body: Record<string, unknown> = {
      firstName: p.first,
      lastName: p.last,
      email: p.email,
      phone: p.phone,
      birthDate: isoDate(-20000, -6600),
      address: address(),
      preferences: { newsletter: chance(0.5), language: pick(['en-GB', 'en-US', 'fr-FR', 'de-DE', 'ja-JP', 'zh-CN']), currency: pick(['EUR', 'GBP', 'USD', 'JPY', 'CNY']) },
    };
    if (chance(0.4)) body.tags = sample(['vip', 'wholesale', 'newsletter', 'beta', 'staff'], int(1, 2));
    if (chance(0.5)) add(G, { method: 'POST', path: '/api/v1/users', headers: jsonHeaders(true), body: json(body), note: 'create user' });
    else add(G, { method: 'PUT', path: `/api/v1/users/${uuid()}`, headers: jsonHeaders(true), body: json({ ...body, updatedAt: isoTime() }), note: 'update user' });
  }
  for (let i = 0; i < 40; i++) {
    const lines = sample(PRODUCTS, int(1, 4)).map(([sku, name, price]) => ({ sku, name, quantity: int(1, 3), unitPrice: price }));
    const order: Record<string, unknown> = {
      customerId: uuid(),
      currency: pick(['EUR', 'GBP', 'USD']),
      items: lines,
      shippingAddress: address(),
      billingSameAsShipping: chance(0.7),
      requestedDeliveryDate: isoDate(2, 20),
    };
    if (chance(0.3)) order.couponCode = pick(COUPONS);
    if (chance(0.4)) order.notes = pick(COMMENTS);
    add(G, { method: 'POST', path: '/api/v1/orders', headers: { ...jsonHeaders(true), 'Idempotency-Key': uuid() }, body: json(order), note: 'create order' });
  }
  for (let i = 0; i < 15; i++) {
    add(G, {
      method: 'PATCH',
      path: `/api/v1/orders/${int(100000, 999999)}`,
      headers: jsonHeaders(true),
      body: json(pick([{ status: 'cancelled', reason: pick(['Ordered the wrong size', "Found it cheaper elsewhere, sorry!", "Won't arrive in time for the trip"]) }, { status: 'paid', paidAt: isoTime(), amount: money(10, 400) }, { shippingAddress: address() }])),
      note: 'update order',
    });
  }
  for (let i = 0; i < 35; i++) {
    const min = int(0, 10) * 10;
    add(G, {
      method: 'POST',
      path: '/api/v1/products/search',
      headers: jsonHeaders(true),
      body: json({
        query: pick(SEARCHES),
        filters: {
          category: sample(CATEGORIES, int(1, 3)),
          price: { min, max: min + int(5, 30) * 10 },
          sizes: chance(0.5) ? sample(['XS', 'S', 'M', 'L', 'XL'], int(1, 3)) : undefined,
          inStock: chance(0.7),
          rating: chance(0.4) ? { gte: pick([3, 3.5, 4, 4.5]) } : undefined,
          updatedSince: chance(0.3) ? isoTime() : undefined,
        },
        sort: [{ field: pick(['price', 'rating', 'createdAt', 'relevance']), order: pick(['asc', 'desc']) }],
        page: int(1, 12),
        pageSize: pick([12, 24, 48]),
      }),
      note: 'search filters',
    });
  }
  for (let i = 0; i < 25; i++) {
    const path = pick(['/', '/products/123', '/products/waterproof-jacket?ref=home', '/cart', '/checkout/shipping', '/blog/2024/06/summer-hikes', '/account/orders']);
    add(G, {
      method: 'POST',
      path: '/api/v1/events',
      headers: { ...jsonHeaders(true), Origin: 'https://shop.example.com' },
      body: json({
        event: pick(['page_view', 'add_to_cart', 'begin_checkout', 'purchase', 'search']),
        timestamp: isoTime(),
        sessionId: uuid(),
        url: `https://shop.example.com${path}`,
        referrer: pick(['https://www.google.com/', 'https://www.bing.com/', 'https://shop.example.com/', '', 'https://news.example.org/article/42']),
        viewport: { width: pick([390, 768, 1280, 1440, 1920]), height: pick([844, 1024, 720, 900, 1080]) },
        value: chance(0.3) ? money(5, 300) : undefined,
      }),
      note: 'analytics event',
    });
  }
  for (let i = 0; i < 10; i++) {
    add(G, {
      method: 'POST',
      path: '/api/v1/webhooks',
      headers: jsonHeaders(true),
      body: json({ url: `https://hooks.${pick(DOMAINS)}/shop/${pick(['orders', 'payments', 'inventory'])}`, events: sample(['order.created', 'order.paid', 'order.shipped', 'refund.created', 'stock.low'], int(1, 3)), secret: `whsec_${alnum(24)}`, active: true, description: pick(['ERP sync', 'Slack notifications', "Warehouse team's dashboard"]) }),
      note: 'webhook',
    });
  }
  for (let i = 0; i < 10; i++) {
    add(G, {
      method: 'PUT',
      path: `/api/v1/accounts/${uuid()}/settings`,
      headers: jsonHeaders(true),
      body: json({ timezone: pick(['Europe/Dublin', 'America/New_York', 'Asia/Tokyo', 'Asia/Shanghai', 'Europe/Berlin']), dateFormat: pick(['DD/MM/YYYY', 'YYYY-MM-DD', 'MM/DD/YYYY']), notifications: { email: chance(0.8), sms: chance(0.2), push: { enabled: chance(0.6), quietHours: { from: '22:00', to: '07:00' } } }, twoFactor: chance(0.5) }),
      note: 'settings',
    });
  }
  for (let i = 0; i < 10; i++) {
    const p = person();
    add(G, {
      method: 'POST',
      path: `/api/v1/articles/${pick(['summer-hikes', 'best-espresso-at-home', 'moving-checklist', 'release-notes-5-2'])}/comments`,
      headers: jsonHeaders(true),
      body: json({ author: `${p.first} ${p.last}`, email: p.email, body: pick(COMMENTS), parentId: chance(0.3) ? uuid() : null }),
      note: 'comment',
    });
  }
  for (let i = 0; i < 10; i++) {
    const p = person();
    const checkIn = isoDate(5, 90);
    add(G, {
      method: 'POST',
      path: '/api/v1/bookings',
      headers: jsonHeaders(true),
      body: json({ hotelId: int(1000, 9999), guest: { name: `${p.first} ${p.last}`, email: p.email, phone: p.phone }, checkIn, nights: int(1, 7), guests: { adults: int(1, 3), children: int(0, 2) }, rooms: 1, specialRequests: pick(['Late check-in, around 11pm.', "Cot for a toddler, please.", "We're celebrating our anniversary - a quiet room if possible.", '']) }),
      note: 'booking',
    });
  }
  for (let i = 0; i < 15; i++) {
    add(G, { method: 'GET', path: pick([`/api/v1/orders/${int(100000, 999999)}`, `/api/v1/users/${uuid()}`, '/api/v1/me', `/api/v1/products/${pick(PRODUCTS)[0]}`, '/api/v1/cart']), headers: jsonHeaders(false), note: 'read' });
  }
  for (let i = 0; i < 5; i++) add(G, { method: 'DELETE', path: `/api/v1/cart/items/${uuid()}`, headers: jsonHeaders(false), note: 'delete' });
}

function forms(): void {
  const G = 'form';
  for (let i = 0; i < 35; i++) {
    const p = person();
    add(G, {
      method: 'POST',
      path: '/contact',
      headers: formHeaders('/contact'),
      body: form([['name', `${p.first} ${p.last}`], ['email', p.email], ['phone', p.phone], ['subject', pick(['Order question', 'Returns', 'Feedback', "Where's my parcel?", 'Billing'])], ['message', pick(COMMENTS)], ['csrfmiddlewaretoken', alnum(64)]]),
      note: 'contact',
    });
  }
  for (let i = 0; i < 20; i++) {
    const p = person();
    add(G, {
      method: 'POST',
      path: '/signup',
      headers: formHeaders('/signup'),
      body: form([['first_name', p.first], ['last_name', p.last], ['email', p.email], ['password', pick(['correct horse battery staple', 'S0mething!Secure#2024', 'Tr0ub4dor&3', 'blue-Harbour-57', 'my cat is called Pixel'])], ['country', pick(CITIES)[2]], ['terms', 'on'], ...(chance(0.5) ? ([['newsletter', 'yes']] as [string, string][]) : [])]),
      note: 'signup',
    });
  }
  for (let i = 0; i < 25; i++) {
    const p = person();
    const a = address();
    add(G, {
      method: 'POST',
      path: '/checkout/shipping',
      headers: formHeaders('/checkout/shipping'),
      body: form([['full_name', `${p.first} ${p.last}`], ['address_line1', a.line1!], ['address_line2', a.line2 ?? ''], ['city', a.city!], ['postcode', a.postalCode!], ['country', a.country!], ['phone', p.phone], ['delivery_notes', pick(["Leave it with the neighbour at no. 12 if I'm out.", 'Ring twice, the bell is a bit broken.', "Side gate's open; please put it in the shed.", '', 'Call 10 min before arriving, thanks!'])]]),
      note: 'checkout',
    });
  }
  for (let i = 0; i < 25; i++) {
    const p = person();
    add(G, { method: 'POST', path: `/blog/${pick(['summer-hikes', 'moving-checklist', 'coffee-guide'])}/comment`, headers: formHeaders('/blog'), body: form([['author', p.first], ['email', p.email], ['comment', pick(COMMENTS)], ['remember', 'on']]), note: 'comment' });
  }
  for (let i = 0; i < 10; i++) {
    const p = person();
    add(G, {
      method: 'POST',
      path: '/account/profile',
      headers: formHeaders('/account/profile'),
      body: form([['display_name', `${p.first} ${p.last.charAt(0)}.`], ['bio', pick(["Coffee lover, weekend hiker & amateur baker. I'm based in Cork.", "Dad of two; can't resist a good crossword.", "Ex-teacher, now writing about food (and the occasional train trip).", "Don't judge my playlist :)"])], ['website', `https://www.${pick(DOMAINS)}/~${p.first.toLowerCase().replace(/[^a-z]/g, '')}`], ['birthday', isoDate(-20000, -6600)]]),
      note: 'profile',
    });
  }
  for (let i = 0; i < 5; i++) {
    add(G, { method: 'POST', path: '/newsletter', headers: formHeaders('/'), body: form([['email', person().email], ...sample(['books', 'travel', 'food', 'outdoor', 'deals'], int(1, 3)).map((x) => ['interests', x] as [string, string])]), note: 'newsletter' });
  }
}

const UPLOAD_FILES: { name: string; type: string; make: () => Buffer }[] = [
  { name: 'notes.txt', type: 'text/plain', make: () => Buffer.from("Meeting notes - 11 June\n- Budget approved for Q3\n- Seán to send the venue list\n- Next call: Thursday 10:00\n") },
  { name: 'data.csv', type: 'text/csv', make: () => Buffer.from(['date,region,amount', ...Array.from({ length: int(3, 8) }, () => `${isoDate()},${pick(['north', 'south', 'east', 'west'])},${money(10, 900)}`)].join('\n') + '\n') },
  { name: 'meeting-notes.md', type: 'text/markdown', make: () => Buffer.from("# Weekly sync\n\n* Shipping delays: resolved\n* New supplier starts in July\n* Don't forget the team lunch on Friday!\n") },
  { name: 'IMG_20240611_142233.jpg', type: 'image/jpeg', make: () => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0'), randomBytes(int(200, 600)), Buffer.from([0xff, 0xd9])]) },
  { name: 'Screenshot 2024-06-11 at 10.42.13.png', type: 'image/png', make: () => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(int(200, 600))]) },
  { name: 'avatar.gif', type: 'image/gif', make: () => Buffer.concat([Buffer.from('GIF89a'), randomBytes(int(100, 300))]) },
  { name: 'quarterly-report-Q2.pdf', type: 'application/pdf', make: () => Buffer.concat([Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), randomBytes(int(300, 700)), Buffer.from('\n%%EOF\n')]) },
  { name: 'budget 2024 (final).xlsx', type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', make: () => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(int(300, 600))]) },
  { name: 'contract_v2.odt', type: 'application/vnd.oasis.opendocument.text', make: () => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(int(300, 600))]) },
  { name: 'résumé.docx', type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', make: () => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(int(300, 600))]) },
  { name: 'holiday-photos.zip', type: 'application/zip', make: () => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(int(300, 800))]) },
  { name: 'invoice-4471.pdf', type: 'application/pdf', make: () => Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(int(200, 500)), Buffer.from('\n%%EOF\n')]) },
];

function uploads(): void {
  const G = 'upload';
  for (let i = 0; i < 60; i++) {
    const boundary = `----WebKitFormBoundary${alnum(16)}`;
    const files = sample(UPLOAD_FILES, chance(0.2) ? 2 : 1);
    const parts: Buffer[] = [];
    const field = (name: string, value: string): void => {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
    };
    field('title', pick(['Receipt for order 4471', 'Holiday photos', 'Q2 figures', 'Updated CV', 'Signed contract', "Kids' drawings", 'Screenshot of the error']));
    if (chance(0.6)) field('description', pick(COMMENTS));
    for (const f of files) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${files.length > 1 ? 'files[]' : 'file'}"; filename="${f.name}"\r\nContent-Type: ${f.type}\r\n\r\n`));
      parts.push(f.make(), Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const body = Buffer.concat(parts);
    const headers = { ...formHeaders('/upload'), 'Content-Type': `multipart/form-data; boundary=${boundary}` };
    const text = files.every((f) => f.type.startsWith('text/'));
    add(G, {
      method: 'POST',
      path: pick(['/upload', '/account/documents', '/support/attachments', '/api/v1/files']),
      headers,
      ...(text ? { body: body.toString('utf8') } : { body: body.toString('base64'), encoding: 'base64' as const }),
      note: files.map((f) => f.name).join(', '),
    });
  }
}

function prose(): void {
  const G = 'prose';
  const langs: [string, string[]][] = [['en', PROSE_EN], ['zh', PROSE_ZH], ['ja', PROSE_JA]];
  for (const [lang, paras] of langs) {
    paras.forEach((text, i) => {
      const p = person();
      add(G, {
        method: 'POST',
        path: '/api/v1/posts',
        headers: { ...jsonHeaders(true), 'Accept-Language': pick(LANGS) },
        body: json({ title: text.slice(0, lang === 'en' ? 40 : 12), body: text, lang, author: { name: `${p.first} ${p.last}`, id: uuid() }, createdAt: isoTime(), tags: [lang, pick(['travel', 'review', 'support', 'notice', 'recipe', 'letter'])] }),
        note: `${lang} json #${i + 1}`,
      });
      add(G, {
        method: 'POST',
        path: '/feedback',
        headers: formHeaders('/feedback'),
        body: form([['name', `${p.first} ${p.last}`], ['email', p.email], ['message', text], ['lang', lang]]),
        note: `${lang} form #${i + 1}`,
      });
    });
  }
}

function code(): void {
  const G = 'code-in-body';
  CODE.forEach((c, i) => {
    const p = person();
    const body = `${c.intro}\n\n${c.code}\n\nThanks,\n${p.first}`;
    add(G, {
      method: 'POST',
      path: '/api/v1/tickets',
      headers: jsonHeaders(true),
      body: json({ subject: c.subject, body, priority: pick(['low', 'normal', 'high']), customerId: uuid(), attachments: [] }),
      note: `${c.lang} json`,
    });
    // A third of them through the plain support form as well.
    if (i % 3 === 0) {
      add(G, { method: 'POST', path: '/support', headers: formHeaders('/support'), body: form([['email', p.email], ['subject', c.subject], ['message', body]]), note: `${c.lang} form` });
    }
  });
}

function query(): void {
  const G = 'query';
  const qs = (pairs: [string, string | number][]): string => new URLSearchParams(pairs.map(([k, v]) => [k, String(v)])).toString();
  const makers: (() => string)[] = [
    () => `/products?${qs([['category', pick(CATEGORIES)], ['page', int(1, 30)], ['per_page', pick([12, 24, 48])], ['sort', pick(['price', '-price', 'newest', 'rating', 'name'])]])}`,
    () => `/search?${qs([['q', pick(SEARCHES)], ['lang', pick(['en', 'de', 'fr', 'zh', 'ja'])], ['page', int(1, 5)]])}`,
    () => `/api/v1/orders?${qs([['status', pick(['open', 'shipped', 'cancelled', 'paid'])], ['created_after', isoTime()], ['limit', pick([20, 50, 100])], ['offset', int(0, 20) * 50]])}`,
    () => `/products?${qs([['brand', pick(['Nike', 'Adidas', 'Patagonia', "Levi's", 'Le Creuset', 'Muji'])], ['size', pick(['S', 'M', 'L', '42', '38.5'])], ['color', pick(['red', 'navy', 'forest green', 'off-white'])], ['min_price', int(0, 50)], ['max_price', money(60, 300)]])}`,
    () => `/api/items?${qs([['filter[price][gte]', int(5, 50)], ['filter[price][lte]', int(60, 500)], ['include', 'author,comments'], ['fields[articles]', 'title,body,created_at'], ['page[number]', int(1, 9)], ['page[size]', 25]])}`,
    () => `/events?${qs([['from', isoDate(0, 20)], ['to', isoDate(21, 60)], ['tz', pick(['Europe/Dublin', 'America/Los_Angeles', 'Asia/Tokyo'])], ['type', pick(['concert', 'workshop', 'meetup'])]])}`,
    () => `/?${qs([['utm_source', pick(['newsletter', 'google', 'facebook', 'partner-site'])], ['utm_medium', pick(['email', 'cpc', 'social'])], ['utm_campaign', pick(['summer_sale_2024', 'back-to-school', 'spring launch'])], ['utm_content', pick(['hero-banner', 'footer link'])]])}`,
    () => `/maps?${qs([['lat', (51 + rand() * 4).toFixed(6)], ['lng', (-10 + rand() * 5).toFixed(6)], ['zoom', int(8, 18)], ['layer', pick(['satellite', 'streets'])]])}`,
    () => `/oauth/callback?${qs([['code', alnum(40)], ['state', alnum(24)], ['scope', 'openid profile email']])}`,
    () => `/login?${qs([['next', pick(['/account/orders', '/checkout/payment', '/account/settings?tab=privacy'])]])}`,
    () => `/blog?${qs([['tag', pick(['travel', 'food', 'books'])], ['tag', pick(['family', 'outdoor', 'recipes'])], ['year', pick([2022, 2023, 2024])]])}`,
    () => `/api/v1/users?${qs([['email', person().email], ['fields', 'id,name,created_at']])}`,
    () => `/share?${qs([['url', `https://shop.example.com/products/${pick(PRODUCTS)[0]}`], ['title', pick(PRODUCTS)[1]]])}`,
    () => `/calendar/2024/${String(int(1, 12)).padStart(2, '0')}?${qs([['view', pick(['month', 'week', 'agenda'])], ['highlight', uuid()]])}`,
    () => `/api/v1/reports/sales.csv?${qs([['from', isoDate(-120, -60)], ['to', isoDate(-59, 0)], ['group_by', pick(['day', 'week', 'month'])], ['currency', pick(['EUR', 'USD'])]])}`,
  ];
  for (let i = 0; i < 100; i++) {
    add(G, { method: 'GET', path: makers[i % makers.length]!(), headers: { 'User-Agent': pick(BROWSER_UAS), Accept: i % 3 === 2 ? 'application/json' : HTML_ACCEPT, 'Accept-Language': pick(LANGS), 'Accept-Encoding': 'gzip, deflate, br' }, note: 'query' });
  }
}

function headers(): void {
  const G = 'headers';
  const cookies = [
    () => `sessionid=${alnum(32)}; csrftoken=${alnum(32)}`,
    () => `_ga=GA1.2.${int(100000000, 999999999)}.${Math.floor(BASE_TIME / 1000) - int(0, 9999999)}; _gid=GA1.2.${int(100000000, 999999999)}.${Math.floor(BASE_TIME / 1000)}; theme=dark`,
    () => `JSESSIONID=${hex(32).toUpperCase()}; lang=en`,
    () => `PHPSESSID=${alnum(26).toLowerCase()}; cart_count=${int(0, 9)}`,
    () => `connect.sid=s%3A${alnum(32)}.${alnum(43)}`,
    () => `consent=${encodeURIComponent(json({ necessary: true, analytics: chance(0.5), marketing: false, ts: BASE_TIME }))}`,
    () => `remember_token=${hex(40)}; currency=EUR; recently_viewed=${sample(PRODUCTS, 3).map((p) => p[0]).join('%2C')}`,
    () => `__Host-session=${Buffer.from(randomBytes(24)).toString('base64url')}; __Secure-prefs=tz%3DEurope%2FDublin`,
  ];
  for (let i = 0; i < 60; i++) {
    const ua = pick(BROWSER_UAS);
    const h: Record<string, string> = { 'User-Agent': ua, Accept: pick([HTML_ACCEPT, '*/*', 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8', 'text/css,*/*;q=0.1', 'application/json, text/plain, */*']), 'Accept-Language': pick(LANGS), 'Accept-Encoding': pick(['gzip, deflate, br', 'gzip, deflate, br, zstd', 'gzip']) };
    if (chance(0.85)) h.Cookie = pick(cookies)();
    if (chance(0.6)) h.Referer = pick(['https://www.google.com/', 'https://www.example.com/', 'https://www.example.com/products?category=outdoor', 'https://news.example.org/2024/06/11/story']);
    if (ua.includes('Chrome') && chance(0.7)) {
      h['sec-ch-ua'] = '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"';
      h['sec-ch-ua-mobile'] = ua.includes('Mobile') ? '?1' : '?0';
      h['sec-ch-ua-platform'] = ua.includes('Windows') ? '"Windows"' : ua.includes('Android') ? '"Android"' : '"macOS"';
    }
    if (chance(0.5)) {
      h['Sec-Fetch-Dest'] = 'document';
      h['Sec-Fetch-Mode'] = 'navigate';
      h['Sec-Fetch-Site'] = pick(['none', 'same-origin', 'cross-site']);
      h['Upgrade-Insecure-Requests'] = '1';
    }
    if (chance(0.2)) h['If-None-Match'] = `W/"${hex(2)}-${alnum(27)}"`;
    if (chance(0.15)) h['If-Modified-Since'] = new Date(BASE_TIME - int(1, 90) * 86400000).toUTCString();
    if (chance(0.15)) h.DNT = '1';
    if (chance(0.2)) h['Cache-Control'] = pick(['max-age=0', 'no-cache']);
    if (chance(0.2)) {
      h['X-Requested-With'] = 'XMLHttpRequest';
      h.Authorization = bearer();
    }
    add(G, { method: 'GET', path: pick(['/', '/products', '/products/waterproof-jacket', '/account', '/static/css/main.4f2a9c1e.css', '/images/hero@2x.webp', '/blog/2024/06/summer-hikes', '/help/returns', '/favicon.ico', '/api/v1/cart']), headers: h, note: 'headers' });
  }
}

jsonApi();
forms();
uploads();
prose();
code();
query();
headers();

const byGroup = new Map<string, Item[]>();
for (const it of items) byGroup.set(it.group, [...(byGroup.get(it.group) ?? []), it]);
for (const [group, list] of byGroup) {
  writeFileSync(join(OUT_DIR, `${group}.jsonl`), list.map((it) => JSON.stringify(it)).join('\n') + '\n');
  console.log(`${group}.jsonl ${list.length}`);
}
console.log(`total ${items.length}`);
