<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shows an RSS 2.0 or Atom 1.0 feed of the aggregator as a page when it is opened in a
  browser (the feeds name this file in an xml-stylesheet processing instruction).
  XSLT 1.0, the version browsers run. Feed readers ignore it.

  Dates are shown as the day only: RSS and Atom have no way to say that a source gave
  only a day, so no time of day is shown at all rather than one the feed made up. The
  day is the one the feed writes (in the source's offset), unless the processor has the
  extension function agg:day, which gives it in the news's time zone, as the site's
  pages do: `aggregator serve` runs this stylesheet with it (aggregator.site.feedpage).

  An Atom text of type="html" is written by the aggregator only as plain text escaped
  once more (a title that reads like markup): it is output unescaped once, so the page
  shows the text itself ("Why </script> breaks"), never a tag.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:agg="urn:x-aggregator:xslt"
    exclude-result-prefixes="atom agg">

  <xsl:output method="html" encoding="UTF-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:call-template name="text">
          <xsl:with-param name="of" select="rss/channel/title | atom:feed/atom:title"/>
        </xsl:call-template>: feed</title>
        <link rel="stylesheet" href="style.css"/>
      </head>
      <body>
        <header class="site">
          <p class="site-name"><a href="index.html">All topics</a></p>
        </header>
        <main>
          <xsl:apply-templates select="rss/channel | atom:feed"/>
        </main>
      </body>
    </html>
  </xsl:template>

  <!-- What the page says about the feed, whichever format it is. -->
  <xsl:template name="about">
    <xsl:param name="title"/>
    <xsl:param name="description"/>
    <xsl:param name="format"/>
    <xsl:param name="self"/>
    <h1 dir="auto"><xsl:call-template name="text">
      <xsl:with-param name="of" select="$title"/>
    </xsl:call-template></h1>
    <xsl:if test="normalize-space($description)">
      <p class="lead" dir="auto"><xsl:call-template name="text">
        <xsl:with-param name="of" select="$description"/>
      </xsl:call-template></p>
    </xsl:if>
    <p>
      This is a news feed (<xsl:value-of select="$format"/>): a feed reader checks it for you
      and shows each new story as it appears. To subscribe, copy this address into your feed
      reader:
    </p>
    <p><code class="copy"><xsl:value-of select="$self"/></code></p>
    <p>
      The same stories come as RSS, Atom and JSON Feed: the
      <a href="index.html">list of all topics</a> has every feed, and
      <a href="topics.opml">topics.opml</a> subscribes to all of them at once.
    </p>
    <h2>Latest stories</h2>
  </xsl:template>

  <xsl:template match="rss/channel">
    <xsl:call-template name="about">
      <xsl:with-param name="title" select="title"/>
      <xsl:with-param name="description" select="description"/>
      <xsl:with-param name="format">RSS 2.0</xsl:with-param>
      <xsl:with-param name="self" select="atom:link[@rel = 'self']/@href"/>
    </xsl:call-template>
    <xsl:choose>
      <xsl:when test="item">
        <ol class="stories">
          <xsl:apply-templates select="item"/>
        </ol>
      </xsl:when>
      <xsl:otherwise><p>No stories yet.</p></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <xsl:call-template name="headline">
        <xsl:with-param name="title" select="title"/>
        <xsl:with-param name="href" select="normalize-space(link)"/>
      </xsl:call-template>
      <xsl:if test="pubDate">
        <span class="date"><xsl:choose>
          <xsl:when test="function-available('agg:day')">
            <xsl:value-of select="agg:day(normalize-space(pubDate))"/>
          </xsl:when>
          <xsl:otherwise><xsl:call-template name="rfc822-day">
            <xsl:with-param name="text" select="normalize-space(pubDate)"/>
          </xsl:call-template></xsl:otherwise>
        </xsl:choose></span>
      </xsl:if>
    </li>
  </xsl:template>

  <xsl:template match="atom:feed">
    <xsl:call-template name="about">
      <xsl:with-param name="title" select="atom:title"/>
      <xsl:with-param name="description" select="atom:subtitle"/>
      <xsl:with-param name="format">Atom 1.0</xsl:with-param>
      <xsl:with-param name="self" select="atom:link[@rel = 'self']/@href"/>
    </xsl:call-template>
    <xsl:choose>
      <xsl:when test="atom:entry">
        <ol class="stories">
          <xsl:apply-templates select="atom:entry"/>
        </ol>
      </xsl:when>
      <xsl:otherwise><p>No stories yet.</p></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li>
      <xsl:call-template name="headline">
        <xsl:with-param name="title" select="atom:title"/>
        <xsl:with-param name="href"
            select="(atom:link[@rel = 'alternate'] | atom:link[not(@rel)])[1]/@href"/>
      </xsl:call-template>
      <!-- Only published: an undated entry's updated is when the aggregator saw it. -->
      <xsl:if test="atom:published">
        <span class="date"><xsl:choose>
          <xsl:when test="function-available('agg:day')">
            <xsl:value-of select="agg:day(normalize-space(atom:published))"/>
          </xsl:when>
          <xsl:otherwise><xsl:call-template name="iso-day">
            <xsl:with-param name="text" select="normalize-space(atom:published)"/>
          </xsl:call-template></xsl:otherwise>
        </xsl:choose></span>
      </xsl:if>
    </li>
  </xsl:template>

  <xsl:template name="headline">
    <xsl:param name="title"/>
    <xsl:param name="href"/>
    <xsl:choose>
      <xsl:when test="string($href)">
        <a href="{$href}" dir="auto"><xsl:call-template name="text">
          <xsl:with-param name="of" select="$title"/>
        </xsl:call-template></a>
      </xsl:when>
      <xsl:otherwise><span dir="auto"><xsl:call-template name="text">
        <xsl:with-param name="of" select="$title"/>
      </xsl:call-template></span></xsl:otherwise>
    </xsl:choose>
    <xsl:text> </xsl:text>
  </xsl:template>

  <!-- A title or description (an element), its spaces collapsed; see the notes above. -->
  <xsl:template name="text">
    <xsl:param name="of"/>
    <xsl:choose>
      <xsl:when test="$of/@type = 'html'">
        <xsl:value-of select="normalize-space($of)" disable-output-escaping="yes"/>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="normalize-space($of)"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- "Thu, 12 Oct 2023 09:30:00 +0200" → "12 October 2023" (RFC 822 §5, as RSS 2.0 uses it). -->
  <xsl:template name="rfc822-day">
    <xsl:param name="text"/>
    <xsl:variable name="dated">
      <xsl:choose>
        <xsl:when test="contains($text, ',')"><xsl:value-of select="normalize-space(substring-after($text, ','))"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="day" select="substring-before($dated, ' ')"/>
    <xsl:variable name="after-day" select="substring-after($dated, ' ')"/>
    <xsl:variable name="month" select="substring-before($after-day, ' ')"/>
    <xsl:variable name="after-month" select="substring-after($after-day, ' ')"/>
    <xsl:variable name="year">
      <xsl:choose>
        <xsl:when test="contains($after-month, ' ')"><xsl:value-of select="substring-before($after-month, ' ')"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="$after-month"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:value-of select="number($day)"/>
    <xsl:text> </xsl:text>
    <xsl:variable name="months" select="'JanFebMarAprMayJunJulAugSepOctNovDec'"/>
    <xsl:choose>
      <xsl:when test="string-length($month) = 3 and contains($months, $month)">
        <xsl:call-template name="month-name">
          <xsl:with-param name="number"
              select="string-length(substring-before($months, $month)) div 3 + 1"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$month"/></xsl:otherwise>
    </xsl:choose>
    <xsl:text> </xsl:text>
    <xsl:value-of select="$year"/>
  </xsl:template>

  <!-- "2023-10-12T09:30:00+02:00" → "12 October 2023" (RFC 3339, as Atom uses it). -->
  <xsl:template name="iso-day">
    <xsl:param name="text"/>
    <xsl:value-of select="number(substring($text, 9, 2))"/>
    <xsl:text> </xsl:text>
    <xsl:call-template name="month-name">
      <xsl:with-param name="number" select="number(substring($text, 6, 2))"/>
    </xsl:call-template>
    <xsl:text> </xsl:text>
    <xsl:value-of select="substring($text, 1, 4)"/>
  </xsl:template>

  <xsl:template name="month-name">
    <xsl:param name="number"/>
    <xsl:choose>
      <xsl:when test="$number = 1">January</xsl:when>
      <xsl:when test="$number = 2">February</xsl:when>
      <xsl:when test="$number = 3">March</xsl:when>
      <xsl:when test="$number = 4">April</xsl:when>
      <xsl:when test="$number = 5">May</xsl:when>
      <xsl:when test="$number = 6">June</xsl:when>
      <xsl:when test="$number = 7">July</xsl:when>
      <xsl:when test="$number = 8">August</xsl:when>
      <xsl:when test="$number = 9">September</xsl:when>
      <xsl:when test="$number = 10">October</xsl:when>
      <xsl:when test="$number = 11">November</xsl:when>
      <xsl:when test="$number = 12">December</xsl:when>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
